//! The operations that only move elements: `transpose`, `slice` (when it
//! is not a view), `unslice` and `pack`; rows at computed indices (`index`,
//! `gather`) and their scatter-adds (`index_add`, `scatter_add`).

use cranelift_codegen::ir::{self as cl, InstBuilder, MemFlagsData};
use cranelift_module::{DataDescription, Linkage, Module};

use super::{Ix, Loc, Opnd, Translator};
use crate::backend::plan::{views, FAULT_INDEX, UNROLL};
use crate::ir::fault::safe_rows;
use crate::ir::interp::slice_offsets;
use crate::ir::{Binary, Op, SliceAxis, Value};
use crate::shape::Shape;

/// The fewest numbers of a `transpose` that the kernel's transpose moves
/// (by blocks, with vector shuffles) instead of the generated loops, which
/// read the source once per column.
const KERNEL_TRANSPOSE: usize = 1 << 10;

/// A class of the elements of a `scatter_add` at constant indices
/// ([`Translator::by_destination`]): how many numbers each takes, how many
/// elements, and where the class starts in the table.
type Class = (usize, usize, usize);

/// The most numbers a `scatter_add` at constant indices adds into each
/// element to add them in a register, element by element
/// ([`Translator::by_destination`]): the additions of an element are
/// written out one after the other.
const BY_DESTINATION: usize = 32;

/// The rows read in pieces that a loop going down its rows asks the cache
/// for a step ahead ([`Translator::index`]): from 64 numbers (512 bytes of
/// f64), where a row's misses start to cost more than the call, to 2048
/// (16 KiB), a row ahead that stays in the L2 cache beside the current.
const PREFETCH_ROWS: std::ops::RangeInclusive<usize> = 64..=2048;

impl Translator<'_, '_> {
    /// `v`, the `transpose` of matrix `a`: element `(j, i)` of the result is
    /// `a[i, j]`.
    pub(super) fn transpose(&mut self, v: Value, a: Value) -> Loc {
        let f = self.f;
        let shape = f.shape(v);
        let src = self.operand(a);
        let dst = self.dest(v);
        let (rows, cols) = (shape.dims()[1], shape.dims()[0]);
        if rows * cols >= KERNEL_TRANSPOSE {
            // By blocks that stay in the cache (`kmeans`' points, 100,000
            // x 16: the loops below read every line of them 16 times).
            self.transpose_kernel(src, (rows, cols), dst);
            return self.dst_loc(dst);
        }
        // The result is [cols, rows]: element (j, i) is a[i, j].
        self.nest(shape.dims(), &mut |t, ix| {
            let from = t.lin(&[(ix[1], cols), (ix[0], 1)], 0);
            let x = t.read(src, from);
            let to = t.lin(&[(ix[0], rows), (ix[1], 1)], 0);
            t.write(dst, to, x);
        });
        self.dst_loc(dst)
    }

    /// `v`, the `pack` (or `concat`) of `args`: each copied in turn, one
    /// after the other.
    pub(super) fn pack(&mut self, v: Value, args: &[Value]) -> Loc {
        let dst = self.dest(v);
        let mut at = 0;
        for &a in args {
            let size = self.f.shape(a).size();
            let src = self.operand(a);
            self.copy(src, dst, at, size);
            at += size;
        }
        self.dst_loc(dst)
    }

    /// `v`, a `slice` of `a` that is not a view: a scalar read, or a copy
    /// element by element.
    pub(super) fn slice(&mut self, v: Value, a: Value, axes: &[SliceAxis]) -> Loc {
        let from = self.f.shape(a).clone();
        let src = self.operand(a);
        let out = self.f.shape(v).clone();
        if out.is_scalar() {
            let at = slice_offsets(&from, axes)[0];
            return Loc::Reg(self.read(src, Ix::c(at)));
        }
        let dst = self.dest(v);
        let (base, ranges) = strided(&from, axes);
        let out_strides = out.strides();
        self.nest(out.dims(), &mut |t, ix| {
            let terms: Vec<(Ix, usize)> = ix.iter().copied().zip(ranges.iter().copied()).collect();
            let a = t.lin(&terms, base);
            let x = t.read(src, a);
            let terms: Vec<(Ix, usize)> = ix
                .iter()
                .copied()
                .zip(out_strides.iter().copied())
                .collect();
            let b = t.lin(&terms, 0);
            t.write(dst, b, x);
        });
        self.dst_loc(dst)
    }

    /// `v`, the `unslice` of `a`: zeros around `a`'s elements at their
    /// places.
    pub(super) fn unslice(&mut self, v: Value, a: Value, axes: &[SliceAxis], into: &Shape) -> Loc {
        let src = self.operand(a);
        if into.is_scalar() {
            return Loc::Reg(self.read(src, Ix::c(0)));
        }
        let dst = self.dest(v);
        self.unslice_to(dst, a, axes, into);
        self.dst_loc(dst)
    }

    /// The `unslice` of `a` written to `dst` (of `into`'s size).
    pub(super) fn unslice_to(&mut self, dst: Opnd, a: Value, axes: &[SliceAxis], into: &Shape) {
        let src = self.operand(a);
        let part = self.f.shape(a).clone();
        if let Some(off) = views::contiguous(into, axes) {
            // Zeros around one block: filled, and copied two at a time.
            let len = part.size();
            self.fill(dst, off, 0.0);
            self.copy(src, dst, off, len);
            self.fill(dst.at(off + len), into.size() - off - len, 0.0);
            return;
        }
        self.fill(dst, into.size(), 0.0);
        let (base, ranges) = strided(into, axes);
        let part_strides = part.strides();
        self.nest(part.dims(), &mut |t, ix| {
            let terms: Vec<(Ix, usize)> = ix
                .iter()
                .copied()
                .zip(part_strides.iter().copied())
                .collect();
            let a = t.lin(&terms, 0);
            let x = t.read(src, a);
            let terms: Vec<(Ix, usize)> = ix.iter().copied().zip(ranges.iter().copied()).collect();
            let b = t.lin(&terms, base);
            t.write(dst, b, x);
        });
    }
}

/// The element offset of `Slice(axes)` of shape `s` at the origin of the
/// result, and the source stride of every kept (range) axis.
fn strided(s: &Shape, axes: &[SliceAxis]) -> (usize, Vec<usize>) {
    let mut base = 0;
    let mut ranges = Vec::new();
    for (ax, stride) in axes.iter().zip(s.strides()) {
        match *ax {
            SliceAxis::At(i) => base += i * stride,
            SliceAxis::Range(lo, _) => {
                base += lo * stride;
                ranges.push(stride);
            }
        }
    }
    (base, ranges)
}

impl Translator<'_, '_> {
    /// The operand `x` from row `k` (a run-time index) of rows of `row`
    /// elements on.
    fn row_of(&mut self, x: Opnd, k: cl::Value, row: usize) -> Opnd {
        match x {
            Opnd::Reg(_) => x,
            Opnd::Mem { ptr, off, readonly } => {
                let bytes = self.b.ins().imul_imm_s(k, (row << self.shift) as i64);
                Opnd::Mem {
                    ptr: self.b.ins().iadd(ptr, bytes),
                    off,
                    readonly,
                }
            }
        }
    }

    /// `v = x[i]`, the row `i` of the leading axis, read where it is (a
    /// view, see [`crate::backend::plan::views::is_view`]); an index that is
    /// not an integer in range fails (see [`Translator::checked_index`]).
    pub(super) fn index(&mut self, v: Value, x: Value, i: Value) -> Loc {
        let n = self.f.shape(x).dims()[0];
        let row = self.f.shape(v).size();
        let backwards = self.counts_down(i) && self.read_in_pieces(v);
        let i = self.scalar_of(i);
        let k = self.checked_index(v, i, n, FAULT_INDEX);
        let src = self.operand(x);
        let src = self.row_of(src, k, row);
        if backwards && PREFETCH_ROWS.contains(&row) {
            let bytes = (row as i64) << self.shift;
            let at = self.address_of(src);
            let next = self.b.ins().iadd_imm_s(at, -bytes);
            let len = self.b.ins().iconst(self.ptr, bytes);
            self.call_kernel(crate::backend::kernel::prefetch::PREFETCH, &[next, len]);
        }
        if self.f.shape(v).is_scalar() {
            return Loc::Reg(self.read(src, Ix::c(0)));
        }
        match src {
            Opnd::Mem {
                ptr,
                off,
                readonly: true,
            } => Loc::Ptr(ptr, off),
            Opnd::Mem { ptr, off, .. } => Loc::Row(ptr, off),
            Opnd::Reg(_) => unreachable!("a tensor with rows is in memory"),
        }
    }

    /// Whether `i` is `c - r` in a loop's body, `r` its step: the rows it
    /// indexes go down, one a step (a gradient's loop over a forward
    /// loop's saved steps).
    fn counts_down(&self, i: Value) -> bool {
        let inst = self.f.inst(i);
        self.fault_at.is_some()
            && inst.op == Op::Binary(Binary::Sub)
            && matches!(self.f.inst(inst.args[0]).op, Op::Const(_))
            && self.f.inst(inst.args[1]).op == Op::Input(0)
    }

    /// Whether `v` is read only through slices of it, two or more: its
    /// pieces are read by loops of their own, each too short for the
    /// hardware's prefetchers to follow (`lstm`'s saved step, 4.6 KB read
    /// in 40 pieces), where a row read whole is one stream they follow
    /// (`ode`'s saved stages, which a prefetch a step ahead slowed by 20%).
    fn read_in_pieces(&self, v: Value) -> bool {
        let readers: Vec<&Op> = self
            .f
            .iter()
            .filter(|(_, inst)| inst.args.contains(&v))
            .map(|(_, inst)| &inst.op)
            .collect();
        readers.len() >= 2 && readers.iter().all(|op| matches!(op, Op::Slice(_)))
    }

    /// `v = acc` with `g` added to its row `i`.
    pub(super) fn index_add(&mut self, v: Value, acc: Value, g: Value, i: Value) -> Loc {
        self.row_update(v, acc, g, i, true)
    }

    /// `v = x` with its row `i` replaced by `r`.
    pub(super) fn index_set(&mut self, v: Value, x: Value, r: Value, i: Value) -> Loc {
        self.row_update(v, x, r, i, false)
    }

    /// `v = acc` with `g` added to its row `i` (`add`), or put there.
    fn row_update(&mut self, v: Value, acc: Value, g: Value, i: Value, add: bool) -> Loc {
        let n = self.f.shape(acc).dims()[0];
        let row = self.f.shape(g).size();
        let i = self.scalar_of(i);
        let k = self.checked_index(v, i, n, FAULT_INDEX);
        let (src, g) = (self.operand(acc), self.operand(g));
        // A carried value updated in place: one row's work.
        let dst = self.accumulator(v, src, n * row);
        let at = self.row_of(dst, k, row);
        self.for_each(row, &mut |t, e| {
            let b = t.read(g, e);
            let new = if add {
                let a = t.read(at, e);
                t.b.ins().fadd(a, b)
            } else {
                b
            };
            t.write(at, e, new);
        });
        self.dst_loc(dst)
    }

    /// The operand `x` from row `p` (a position, of rows of `row` elements)
    /// on.
    fn row_at(&mut self, x: Opnd, p: Ix, row: usize) -> Opnd {
        let x = match p.dynamic {
            Some(d) => self.row_of(x, d, row),
            None => x,
        };
        x.at(p.konst * row)
    }

    /// The row of `n` that the index at position `p` of `idx` names: the
    /// index checked (see [`Translator::checked_index`]), a fault of `v` if
    /// it is not an integer in range, unless `sure` (constant indices all
    /// known to be in range).
    fn row_number(&mut self, v: Value, idx: Opnd, p: Ix, n: usize, sure: bool) -> cl::Value {
        let c = self.read(idx, p);
        if sure {
            return self.b.ins().fcvt_to_sint_sat(self.ptr, c);
        }
        self.checked_index(v, c, n, FAULT_INDEX)
    }

    /// `v = x[i]` for a tensor of indices `i`: for each position `p` of `i`
    /// in row-major order, its index checked and row `i[p]` of `x` copied
    /// to row `p` of `v` (a row of one element: one load and one store).
    pub(super) fn gather(&mut self, v: Value, x: Value, i: Value) -> Loc {
        let (n, row) = self.f.shape(x).rows();
        let count = self.f.shape(i).size();
        let sure = safe_rows(self.f, self.f.inst(v));
        let (src, idx) = (self.operand(x), self.operand(i));
        if self.f.shape(v).is_scalar() {
            let k = self.row_number(v, idx, Ix::c(0), n, sure);
            let from = self.row_of(src, k, 1);
            return Loc::Reg(self.read(from, Ix::c(0)));
        }
        let dst = self.dest(v);
        let table = self.row_offsets(v, i, row, sure);
        let each = if table.is_some() && row == 1 {
            Self::for_each_two
        } else {
            Self::for_each
        };
        each(self, count, &mut |t, p| {
            let from = match table {
                Some(table) => t.row_in(src, table, p),
                None => {
                    let k = t.row_number(v, idx, p, n, sure);
                    t.row_of(src, k, row)
                }
            };
            let to = t.row_at(dst, p, row);
            t.copy(from, to, 0, row);
        });
        self.dst_loc(dst)
    }

    /// The offsets in bytes of the rows of `row` elements that the
    /// constant indices `i` of `v` (a gather or a scatter) name, as a
    /// read-only table of 32-bit numbers, when they are `sure` (all whole
    /// and in range, see [`safe_rows`]) and fit: the loop then reads an
    /// offset a position where it converted an f64 index to an integer (a
    /// saturating conversion, two branches) at every step (`det`'s
    /// `D[WITHOUT]`, 4608 positions a step at ell = 9). `None` otherwise,
    /// or if the table cannot be defined.
    fn row_offsets(&mut self, v: Value, i: Value, row: usize, sure: bool) -> Option<cl::Value> {
        let Op::Const(c) = &self.f.inst(i).op else {
            return None;
        };
        if !sure {
            return None;
        }
        let offsets: Option<Vec<u32>> = (c.0.data.iter())
            .map(|&k| u32::try_from((k as usize * row) << self.shift).ok())
            .collect();
        self.offsets_table(v, "gradc_rows", &offsets?)
    }

    /// `offsets` as a read-only table of the code, named after `v`.
    fn offsets_table(&mut self, v: Value, prefix: &str, offsets: &[u32]) -> Option<cl::Value> {
        let bytes: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        let name = self.data_name(prefix, v);
        let id = self
            .module
            .declare_data(&name, Linkage::Local, false, false)
            .ok()?;
        let mut desc = DataDescription::new();
        desc.define(bytes.into_boxed_slice());
        desc.set_align(4);
        self.module.define_data(id, &desc).ok()?;
        let gv = self.module.declare_data_in_func(id, self.b.func);
        Some(self.b.ins().symbol_value(self.ptr, gv))
    }

    /// The operand `x` from the row whose offset is at position `p` of the
    /// table of [`Translator::row_offsets`].
    fn row_in(&mut self, x: Opnd, table: cl::Value, p: Ix) -> Opnd {
        let at = match p.dynamic {
            Some(d) => {
                let four = self.b.ins().ishl_imm_u(d, 2);
                self.b.ins().iadd(table, four)
            }
            None => table,
        };
        let flags = MemFlagsData::trusted().with_readonly();
        let off = self.b.ins().uload32(flags, at, (4 * p.konst) as i32);
        match x {
            Opnd::Mem {
                ptr,
                off: o,
                readonly,
            } => Opnd::Mem {
                ptr: self.b.ins().iadd(ptr, off),
                off: o,
                readonly,
            },
            Opnd::Reg(_) => unreachable!("rows are in memory"),
        }
    }

    /// `v = acc` with row `p` of `g` added to row `i[p]`, for each position
    /// `p` of `i` in row-major order; in place when `v` is a carried value
    /// updated where it lies (see `body::in_place_updates`).
    pub(super) fn scatter_add(&mut self, v: Value, acc: Value, g: Value, i: Value) -> Loc {
        let (n, row) = self.f.shape(acc).rows();
        let count = self.f.shape(i).size();
        let sure = safe_rows(self.f, self.f.inst(v));
        let (src, g, idx) = (self.operand(acc), self.operand(g), self.operand(i));
        let dst = self.accumulator(v, src, n * row);
        let by_destination = match g {
            Opnd::Mem { .. } => self.by_destination(v, (i, n), row, sure),
            Opnd::Reg(_) => None,
        };
        if let Some((table, classes)) = by_destination {
            // Each element of `acc` adds its `c` numbers in a register, in
            // the order of their positions.
            for (c, elements, at) in classes {
                self.for_each(elements, &mut |t, e| {
                    let element = t.lin(&[(e, 1)], at);
                    let to = t.row_in(dst, table, element);
                    let mut sum = t.read(to, Ix::c(0));
                    for j in 0..c {
                        let p = t.lin(&[(e, c)], at + elements + j);
                        let from = t.row_in(g, table, p);
                        let x = t.read(from, Ix::c(0));
                        sum = t.b.ins().fadd(sum, x);
                    }
                    t.write(to, Ix::c(0), sum);
                });
            }
            return self.dst_loc(dst);
        }
        let table = self.row_offsets(v, i, row, sure);
        self.for_each(count, &mut |t, p| {
            let at = match table {
                Some(table) => t.row_in(dst, table, p),
                None => {
                    let k = t.row_number(v, idx, p, n, sure);
                    t.row_of(dst, k, row)
                }
            };
            let from = t.row_at(g, p, row);
            t.pairwise(at, from, row, &mut |t, a, b| t.b.ins().fadd(a, b));
        });
        self.dst_loc(dst)
    }

    /// For `v`, a `scatter_add` of single numbers (`row` 1) into `n` at
    /// constant indices `i`, all in range (`sure`): a table of byte
    /// offsets, and the classes of the elements by how many numbers are
    /// added into them (`c`, at most [`BY_DESTINATION`]), each `(c, its
    /// elements, where it starts in the table)`. A class's part of the
    /// table is its elements' offsets in `acc`, then for each of them the
    /// offsets of its numbers in the order of their positions. Each
    /// element is then a sum in a register, where the additions in the
    /// order of the positions went through memory, each waiting for the
    /// store before it to the same element (`det`'s adjoint of
    /// `D[WITHOUT]`, whose 2^ell elements a step take 0 to 2 ell numbers
    /// each). `None` if the indices are not such.
    fn by_destination(
        &mut self,
        v: Value,
        (i, n): (Value, usize),
        row: usize,
        sure: bool,
    ) -> Option<(cl::Value, Vec<Class>)> {
        let Op::Const(data) = &self.f.inst(i).op else {
            return None;
        };
        if row != 1 || !sure {
            return None;
        }
        let mut positions: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (p, &k) in data.0.data.iter().enumerate() {
            positions[k as usize].push(u32::try_from(p << self.shift).ok()?);
        }
        let mut counts: Vec<usize> = positions.iter().map(Vec::len).filter(|&c| c > 0).collect();
        counts.sort_unstable();
        counts.dedup();
        // At most that many numbers an element, so at most that many
        // classes.
        if counts.last().is_some_and(|&c| c > BY_DESTINATION) {
            return None;
        }
        let (mut table, mut classes) = (Vec::new(), Vec::new());
        for c in counts {
            let elements: Vec<usize> = (0..n).filter(|&k| positions[k].len() == c).collect();
            classes.push((c, elements.len(), table.len()));
            for &k in &elements {
                table.push(u32::try_from(k << self.shift).ok()?);
            }
            for &k in &elements {
                table.extend_from_slice(&positions[k]);
            }
        }
        Some((self.offsets_table(v, "gradc_sums", &table)?, classes))
    }

    /// Where `v`, rows added into `acc` (`src`, of `size` elements), is
    /// computed: where `acc` lies, for a carried value updated in place,
    /// else in `v`'s slot with `acc` copied there first.
    fn accumulator(&mut self, v: Value, src: Opnd, size: usize) -> Opnd {
        let dst = self.dest(v);
        if !self.in_place.iter().any(|&(w, _)| w == v) {
            self.copy(src, dst, 0, size);
        }
        dst
    }

    /// `v`, `x` with its axes reordered: a loop nest over `v`'s shape
    /// reading `x` through its strides, permuted.
    pub(super) fn permute(&mut self, v: Value, x: Value, perm: &[usize]) -> Loc {
        let out = self.f.shape(v).clone();
        let strides = self.f.shape(x).strides();
        let src = self.operand(x);
        if out.is_scalar() {
            return Loc::Reg(self.read(src, Ix::c(0)));
        }
        let dst = self.dest(v);
        if let (&[rows, cols], [1, 0]) = (out.dims(), perm) {
            if rows <= UNROLL && cols > UNROLL {
                // A few long rows (a transpose of [P, 3]): one loop over
                // the source's rows, each read in order and its numbers
                // written to the rows of the result.
                self.for_each(cols, &mut |t, i| {
                    for r in 0..rows {
                        let at = t.lin(&[(i, rows)], r);
                        let x = t.read(src, at);
                        let to = t.lin(&[(i, 1)], r * cols);
                        t.write(dst, to, x);
                    }
                });
                return self.dst_loc(dst);
            }
        }
        let out_strides = out.strides();
        self.nest(out.dims(), &mut |t, ix| {
            let from: Vec<(Ix, usize)> = ix
                .iter()
                .zip(perm)
                .map(|(&i, &p)| (i, strides[p]))
                .collect();
            let at = t.lin(&from, 0);
            let x = t.read(src, at);
            let to: Vec<(Ix, usize)> = ix
                .iter()
                .copied()
                .zip(out_strides.iter().copied())
                .collect();
            let at = t.lin(&to, 0);
            t.write(dst, at, x);
        });
        self.dst_loc(dst)
    }

    /// `t`, the transpose of the `concat` `c` of matrices (a step of the
    /// two, [`fuse::transposed_concat`]): each row of `t` a column of every
    /// part in turn, read from the parts (the `concat` is not written).
    pub(super) fn transposed_concat(&mut self, c: Value, t: Value) -> Loc {
        let (rows, cols) = match self.f.shape(t).dims() {
            &[rows, cols] => (rows, cols),
            _ => unreachable!("a transposed concat is a matrix"),
        };
        let mut parts = Vec::new();
        for &p in &self.f.inst(c).args.clone() {
            let k = self.f.shape(p).dims()[0];
            parts.push((self.operand(p), k));
        }
        let dst = self.dest(t);
        self.for_each(rows, &mut |t, i| {
            let mut col = 0;
            for &(src, k) in &parts {
                for r in 0..k {
                    let at = t.lin(&[(i, 1)], r * rows);
                    let x = t.read(src, at);
                    let to = t.lin(&[(i, cols)], col + r);
                    t.write(dst, to, x);
                }
                col += k;
            }
        });
        self.dst_loc(dst)
    }

    /// `v`, the elements of `x` in another shape: copied.
    pub(super) fn reshape(&mut self, v: Value, x: Value) -> Loc {
        let src = self.operand(x);
        if self.f.shape(v).is_scalar() {
            return Loc::Reg(self.read(src, Ix::c(0)));
        }
        let dst = self.dest(v);
        let n = self.f.shape(v).size();
        self.copy(src, dst, 0, n);
        self.dst_loc(dst)
    }
}
