//! Calls of the matrix-product kernel ([`crate::backend::kernel`]) from the
//! generated code: `C = A B` or `C += A B` of operands in memory, read
//! through their strides, with sizes known when compiling or at run time;
//! and of its transpose.
//! The kernel adds in the interpreter's order, so a product it computes is
//! the same bits as one the generated loops compute.

use cranelift_codegen::ir::{self as cl, AbiParam, InstBuilder};
use cranelift_module::Linkage;

use super::{Opnd, Translator};
use crate::backend::kernel;

/// A matrix operand of the kernel: its first element, and its row and
/// column strides in elements.
#[derive(Copy, Clone)]
pub(super) struct Strided {
    pub at: Opnd,
    pub rows: usize,
    pub cols: usize,
}

impl Strided {
    /// A row-major matrix of `cols` columns.
    pub(super) fn rows(at: Opnd, cols: usize) -> Strided {
        Strided {
            at,
            rows: cols,
            cols: 1,
        }
    }

    /// The transpose of a row-major matrix of `cols` columns.
    pub(super) fn transposed(at: Opnd, cols: usize) -> Strided {
        Strided { at, rows: 1, cols }
    }
}

/// A size of a product: known when compiling, or a value at run time.
#[derive(Copy, Clone)]
pub(super) enum Size {
    Const(usize),
    Value(cl::Value),
}

impl Translator<'_, '_> {
    /// `C = A B` (`resume` 0) or `C += A B` (1, known when compiling or
    /// at run time), `A` `m` x `k`, `B` `k` x `n`, `C` row-major with rows
    /// `rsc` apart: one call of the kernel of the function's element type.
    pub(super) fn gemm(
        &mut self,
        dims: (Size, Size, Size),
        operands: (Strided, Strided),
        c: (Opnd, usize),
        resume: Size,
    ) {
        self.gemm_summing(dims, operands, c, resume, None);
    }

    /// [`Self::gemm`], writing the sums along the rows of `A` (each added
    /// in order from -0) to `sums` too if it is given.
    pub(super) fn gemm_summing(
        &mut self,
        (m, n, k): (Size, Size, Size),
        (a, b): (Strided, Strided),
        (c, rsc): (Opnd, usize),
        resume: Size,
        sums: Option<Opnd>,
    ) {
        let symbol = if self.st == cl::types::F32 {
            kernel::GEMM_F32
        } else {
            kernel::GEMM_F64
        };
        let mut args = Vec::with_capacity(13);
        for size in [m, n, k] {
            args.push(self.size(size));
        }
        for x in [a, b] {
            args.push(self.address_of(x.at));
            args.push(self.size(Size::Const(x.rows)));
            args.push(self.size(Size::Const(x.cols)));
        }
        args.push(self.address_of(c));
        args.push(self.size(Size::Const(rsc)));
        args.push(self.size(resume));
        let sums = match sums {
            Some(s) => self.address_of(s),
            None => self.size(Size::Const(0)),
        };
        args.push(sums);
        self.call_kernel(symbol, &args);
    }

    /// `dst` (`cols` x `rows`) = the transpose of `src` (`rows` x `cols`),
    /// both row-major in memory: one call of the kernel's transpose of the
    /// function's element type.
    pub(super) fn transpose_kernel(&mut self, src: Opnd, (rows, cols): (usize, usize), dst: Opnd) {
        let symbol = if self.st == cl::types::F32 {
            kernel::TRANSPOSE_F32
        } else {
            kernel::TRANSPOSE_F64
        };
        let args = [
            self.address_of(src),
            self.size(Size::Const(rows)),
            self.size(Size::Const(cols)),
            self.address_of(dst),
        ];
        self.call_kernel(symbol, &args);
    }

    /// A call of the kernel's function `symbol`, whose arguments are all
    /// pointer-sized and which returns nothing.
    pub(super) fn call_kernel(&mut self, symbol: &str, args: &[cl::Value]) {
        let mut sig = self.module.make_signature();
        for _ in args {
            sig.params.push(AbiParam::new(self.ptr));
        }
        let id = self
            .module
            .declare_function(symbol, Linkage::Import, &sig)
            .expect("a kernel is declared with one signature");
        let fref = self.module.declare_func_in_func(id, self.b.func);
        self.b.ins().call(fref, args);
    }

    /// A size as a value of pointer type.
    fn size(&mut self, s: Size) -> cl::Value {
        match s {
            Size::Const(k) => self.b.ins().iconst(self.ptr, k as i64),
            Size::Value(v) => v,
        }
    }

    /// The address of a memory operand's first element.
    pub(super) fn address_of(&mut self, o: Opnd) -> cl::Value {
        match o {
            Opnd::Mem { ptr, off: 0, .. } => ptr,
            Opnd::Mem { ptr, off, .. } => self.b.ins().iadd_imm_s(ptr, (off as i64) << self.shift),
            Opnd::Reg(_) => unreachable!("a matrix is in memory"),
        }
    }
}
