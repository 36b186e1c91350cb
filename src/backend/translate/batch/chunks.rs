//! The products of a batched function computed for a chunk of examples at
//! once by the kernel (see [`crate::backend::plan::ChunkProduct`]), the rows
//! of the values kept between stages, and the transposes made before the
//! loop over the examples (for the products done per example).

use cranelift_codegen::ir::{self as cl, InstBuilder};

use crate::backend::abi::INPUTS;
use crate::backend::plan::{BatchPlan, ChunkProduct};
use crate::backend::translate::gemm::{Size, Strided};
use crate::backend::translate::{Ix, Loc, Opnd, Translator};
use crate::ir::{Op, Value};

impl Translator<'_, '_> {
    /// The rows of `Y = X W^T` (or `X W`) of `o` for the `rows` examples (at
    /// least one) from `first` on, `X` the inputs' rows or the kept ones:
    /// one call of the kernel, which reads `W` through its strides and sums
    /// each element from -0 over `k` in order, as the example's own `W @ x`
    /// sums it.
    pub(super) fn chunk_product(
        &mut self,
        o: &ChunkProduct,
        first: cl::Value,
        rows: cl::Value,
        plan: &BatchPlan,
    ) {
        let (x, w, m, k) = self.chunk_operands(o, first, plan);
        let y = Opnd::Mem {
            ptr: self.scratch,
            off: o.y,
            readonly: false,
        };
        let dims = (Size::Value(rows), Size::Const(m), Size::Const(k));
        self.gemm(dims, (Strided::rows(x, k), w), (y, m), Size::Const(0));
    }

    /// The operands of `o`'s chunk product, `X` and a `[k, m]` matrix, with
    /// `m` and `k`: `Y = X W^T` for `W @ x`, `Y = X W` for `x @ W`, `X` the
    /// rows of the chunk's examples from `first` on.
    fn chunk_operands(
        &mut self,
        o: &ChunkProduct,
        first: cl::Value,
        plan: &BatchPlan,
    ) -> (Opnd, Strided, usize, usize) {
        let args = &self.f.inst(o.inst).args;
        let (a, b) = (args[0], args[1]);
        let (xv, w, m, k) = match (self.f.shape(a).dims(), self.f.shape(b).dims()) {
            ([m, k], [_]) => {
                let w = match self.layout.transposed_of(a) {
                    // `W^T`, made before the loop: `[k, m]`, rows in place.
                    Some(off) => Strided::rows(
                        Opnd::Mem {
                            ptr: self.scratch,
                            off,
                            readonly: false,
                        },
                        *m,
                    ),
                    None => Strided::transposed(self.operand(a), *k),
                };
                (b, w, *m, *k)
            }
            ([k], [_, m]) => (a, Strided::rows(self.operand(b), *m), *m, *k),
            _ => unreachable!("a matrix-vector product"),
        };
        // The vector is an input, or else kept (by the plan's construction):
        // only an input is singled out by name.
        let x = match self.input_rows(xv, first) {
            Some(rows) => rows,
            None => Opnd::Mem {
                ptr: self.scratch,
                off: plan
                    .kept_of(xv)
                    .expect("a product's vector is an input or kept"),
                readonly: false,
            },
        };
        (x, w, m, k)
    }

    /// If `v` is an input, its rows in the inputs' buffer from example
    /// `first` on (one row of `v`'s size per example).
    pub(super) fn input_rows(&mut self, v: Value, first: cl::Value) -> Option<Opnd> {
        let Op::Input(input) = self.f.inst(v).op else {
            return None;
        };
        let size = self.f.shape(v).size();
        let base = self.table_entry(INPUTS, input);
        let bytes = self.b.ins().imul_imm_s(first, (size << self.shift) as i64);
        Some(Opnd::Mem {
            ptr: self.b.ins().iadd(base, bytes),
            off: 0,
            readonly: true,
        })
    }

    /// The value of `o`'s product for the current example: row `r` of its
    /// `Y`, read in place (the stage reads it before the next chunk
    /// product of the stage overwrites it; a later stage reads its kept
    /// copy).
    pub(super) fn product_row(&mut self, o: &ChunkProduct, r: cl::Value) {
        self.kept_row(o.inst, o.y, r);
    }

    /// Copies `v` to row `r` of its rows at `off`.
    pub(super) fn keep_row(&mut self, v: Value, off: usize, r: cl::Value) {
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

    /// Makes `v`, of an earlier stage, row `r` of its rows at `off`: a
    /// scalar loaded, a tensor read in place.
    pub(super) fn kept_row(&mut self, v: Value, off: usize, r: cl::Value) {
        let size = self.f.shape(v).size();
        let at = self.b.ins().imul_imm_s(r, (size << self.shift) as i64);
        let ptr = self.b.ins().iadd(self.scratch, at);
        let loc = if self.f.shape(v).is_scalar() {
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

    /// Writes the transpose of `w`, an `[m, k]` matrix, to the scratch
    /// buffer from offset `off` on, as `[k, m]`, by the kernel's transpose.
    pub(super) fn transpose_into(&mut self, w: Value, off: usize) {
        let (m, k) = match self.f.shape(w).dims() {
            [m, k] => (*m, *k),
            _ => unreachable!("only matrices are transposed"),
        };
        let src = self.operand(w);
        let dst = Opnd::Mem {
            ptr: self.scratch,
            off,
            readonly: false,
        };
        self.transpose_kernel(src, (m, k), dst);
    }
}
