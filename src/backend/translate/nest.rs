//! A fused run over a loop nest (see [`super::fuse`]): a run with spreads
//! or reductions of rows goes a row at a time ([`Translator::rows_of`]), a
//! slab of its first axis or a block of its columns at a time (for its
//! parts, `super::parts`), and a run led by a joined matrix product a
//! block of the product's columns at a time, each block computed by the
//! kernel first ([`Translator::product_blocks`]).

use super::along::strides_into;
use super::fuse::Run;
use super::gemm::{Size, Strided};
use super::{Ix, Opnd, Translator};
use crate::backend::plan::fuse::Member;
use crate::backend::plan::products::product_block;
use crate::ir::{Op, Value};
use crate::shape::Shape;

/// The columns of each row a nest goes over: `count` from `first`, and,
/// for a run over blocks of a product's columns, the product and the
/// block it is read from (rows `count` apart).
#[derive(Copy, Clone)]
pub(super) struct Columns {
    first: Ix,
    count: usize,
    product: Option<(Value, Opnd)>,
}

impl Columns {
    /// Every column of a nest of `shape`.
    pub(super) fn all(shape: &Shape) -> Columns {
        Columns {
            first: Ix::c(0),
            count: shape.dims()[shape.rank() - 1],
            product: None,
        }
    }
}

impl Translator<'_, '_> {
    /// A run whose first member is a matrix product ([`Member::Product`],
    /// `m` x `n`): for each block of its columns, the kernel computes the
    /// block into the product's slot (a block of rows `width` apart), then
    /// the run goes over those columns of every row, the product's
    /// elements read from there. Each element of the product, and of every
    /// member, is the same computation as without blocks; a reduction along
    /// the rows still takes the rows in order for each element.
    pub(super) fn product_blocks(
        &mut self,
        r: &Run,
        shape: &Shape,
        simd: bool,
        parts: bool,
    ) -> Result<(), String> {
        let f = self.f;
        let v = r.insts[0];
        let &[m, n] = f.shape(v).dims() else {
            unreachable!("a joined product is a matrix")
        };
        let width = product_block(m, n);
        let blocks = n / width;
        let buffer = self.dest(v);
        if parts && blocks >= 2 && self.spreads_apart(r) {
            // Each part computes its blocks into a buffer of its own, on
            // its stack (at most `JOINED_BLOCK` numbers, 512 KiB).
            debug_assert!(m * width <= crate::backend::plan::products::JOINED_BLOCK);
            self.in_parts(r, (blocks, m * width), &mut |t, r, i| {
                let buffer = t.block_buffer(m * width);
                let first = t.lin(&[(i, width)], 0);
                t.product_block(r, shape, simd, buffer, first, width);
            })?;
        } else {
            self.for_each_rolled(blocks, &mut |t, blk| {
                let first = t.lin(&[(blk, width)], 0);
                t.product_block(r, shape, simd, buffer, first, width);
            });
        }
        if !n.is_multiple_of(width) {
            let first = Ix::c(n - n % width);
            self.product_block(r, shape, simd, buffer, first, n % width);
        }
        Ok(())
    }

    /// The columns `first..first + count` of the joined product that
    /// leads `r`, computed by the kernel into `buffer` (rows `count`
    /// apart), then every member at those columns of every row of the
    /// run's nest, `shape` (the product's, or its reshape's).
    fn product_block(
        &mut self,
        r: &Run,
        shape: &Shape,
        simd: bool,
        buffer: Opnd,
        first: Ix,
        count: usize,
    ) {
        let f = self.f;
        let v = r.insts[0];
        let &[m, n] = f.shape(v).dims() else {
            unreachable!("a joined product is a matrix")
        };
        let (a, b) = (f.inst(v).args[0], f.inst(v).args[1]);
        let k = f.shape(a).dims()[1];
        let (x, y) = (r.outside[&a].0, r.outside[&b].0);
        let dims = (Size::Const(m), Size::Const(count), Size::Const(k));
        let columns = self.moved(y, first);
        let operands = (Strided::rows(x, k), Strided::rows(columns, n));
        self.gemm(dims, operands, (buffer, count), Size::Const(0));
        let cols = Columns {
            first,
            count,
            product: Some((v, buffer)),
        };
        self.rows_of(r, shape, simd, cols);
    }

    /// A run with spreads of `shape`: a loop over its rows (its last axis),
    /// inside loops over the other axes, every operand read and written
    /// from the row's first element; a spread's argument read at the
    /// element it repeats in that row (loaded once, if the row repeats
    /// one element) or from its row. The elements come in row-major order,
    /// as in one loop, so a `sum` adds them in the same order. Only the
    /// `cols` of each row, when the run goes by blocks of columns.
    pub(super) fn rows_of(&mut self, r: &Run, shape: &Shape, simd: bool, cols: Columns) {
        let last = shape.rank() - 1;
        self.nest_with(
            &shape.dims()[..last],
            Self::for_each_rolled,
            &mut |t, ix| {
                t.run_row(r, shape, simd, cols, ix);
            },
        );
    }

    /// The rows of [`Self::rows_of`] whose first index is `i`, every
    /// column of each: the slab `i` of a run's nest.
    pub(super) fn slab_of(&mut self, r: &Run, shape: &Shape, simd: bool, i: Ix) {
        let last = shape.rank() - 1;
        let cols = Columns::all(shape);
        self.nest_with(
            &shape.dims()[1..last],
            Self::for_each_rolled,
            &mut |t, rest| {
                let ix: Vec<Ix> = std::iter::once(i).chain(rest.iter().copied()).collect();
                t.run_row(r, shape, simd, cols, &ix);
            },
        );
    }

    /// The columns `first..first + count` of every row of a run's nest
    /// of `shape`.
    pub(super) fn column_block(
        &mut self,
        r: &Run,
        shape: &Shape,
        simd: bool,
        first: Ix,
        count: usize,
    ) {
        let cols = Columns {
            first,
            count,
            product: None,
        };
        self.rows_of(r, shape, simd, cols);
    }

    /// Row `ix` of [`Self::rows_of`].
    fn run_row(&mut self, r: &Run, shape: &Shape, simd: bool, cols: Columns, ix: &[Ix]) {
        let f = self.f;
        let last = shape.rank() - 1;
        let strides = shape.strides();
        // `ix` and the first column, through `strides`.
        let at = |t: &mut Self, ix: &[Ix], strides: &[usize]| {
            let mut terms: Vec<(Ix, usize)> =
                ix.iter().copied().zip(strides.iter().copied()).collect();
            terms.push((cols.first, strides[last]));
            t.lin(&terms, 0)
        };
        let start = at(self, ix, &strides);
        let mut row = self.from(r, start);
        for (&v, &dst) in &r.dests {
            // A reduction's row: the row of its result the argument's
            // row goes into.
            if let Op::ReduceAxes(_, along) = &f.inst(v).op {
                let into = strides_into(shape, along);
                let at = at(self, ix, &into);
                row.dests.insert(v, self.moved(dst, at));
            }
        }
        if let Some((v, buffer)) = cols.product {
            // The block's row (rows of the block's width): the row's index
            // in the nest, which is the product's, or its reshape's.
            let terms: Vec<(Ix, usize)> = ix
                .iter()
                .zip(&strides)
                .map(|(&i, &stride)| (i, stride / shape.dims()[last] * cols.count))
                .collect();
            let start = self.lin(&terms, 0);
            let o = self.moved(buffer, start);
            for (&w, &m) in r.insts.iter().zip(&r.members) {
                if w == v || m == Member::Product {
                    row.spreads.insert(w, (o, o));
                }
            }
        }
        for &v in r.insts {
            let inst = f.inst(v);
            let Op::BroadcastAxes(along, _) = &inst.op else {
                continue;
            };
            let (src, _) = r.outside[&inst.args[0]];
            let from = strides_into(shape, along);
            let at = at(self, ix, &from);
            let pair = if from[last] == 0 {
                let x = self.read(src, at);
                let wide = if simd { self.splat_as(self.vt, x) } else { x };
                (Opnd::Reg(x), Opnd::Reg(wide))
            } else {
                let src = self.moved(src, at);
                (src, src)
            };
            row.spreads.insert(v, pair);
        }
        self.flat(&row, cols.count, simd);
    }
}
