//! `@` in its four forms and `outer`, every element a dot product (or a
//! product) in the interpreter's order; several independent dot products
//! share one loop, so that their additions overlap.

use cranelift_codegen::ir::{self as cl, InstBuilder};
use cranelift_frontend::Variable;

use super::gemm::{Size, Strided};
use super::{Ix, Loc, Opnd, Translator};
use crate::backend::plan::{kernel_product, UNROLL};
use crate::ir::Value;

/// How many dot products (or pairs of them) a blocked product computes in
/// one loop: enough independent additions to keep the adders busy, few
/// enough to keep the accumulators in registers.
const BLOCK: usize = 4;

/// The fewest numbers of the right operand of a product by a row
/// ([`Translator::row_times`]) that it reads in passes (1 MiB, half the
/// L2 cache of a core here): below, its columns are read a block at a time
/// from the cache.
const PASSES_FROM: usize = 1 << 17;

/// How many numbers of the right operand one pass over its rows reads, for
/// every block of columns (32 KiB, which stay in the L1 cache between the
/// blocks), but at least [`PASS_ROWS`] rows.
const PASS_NUMBERS: usize = 1 << 12;

/// The fewest rows a pass reads, so that the accumulators are loaded and
/// stored once for many products.
const PASS_ROWS: usize = 16;

impl Translator<'_, '_> {
    /// The four forms of `@`, each element a dot product summed left to right
    /// from -0, like the interpreter.
    ///
    /// When the dot products are loops (longer than [`UNROLL`]), several
    /// independent ones share one loop, so that their additions overlap
    /// instead of waiting on each other: [`BLOCK`] rows at a time for a
    /// matrix-vector product, [`BLOCK`] f64x2 pairs of columns at a time
    /// otherwise. A product of two matrices of
    /// [`crate::backend::plan::KERNEL_WORK`] products or more is one call of
    /// the kernel, which adds in the same order; with `sums`, the kernel
    /// also writes there the sums along the rows of `a` (see
    /// [`crate::backend::plan::products::summed_product`]). In a
    /// batched function, `W @ x` with `W` fixed over the
    /// batch reads `W`'s transpose, made once per call (see
    /// [`crate::backend::plan::Layout::transposed`]), and is computed as
    /// `x @ W^T`, two rows of `W` per f64x2. Each element still adds the same
    /// products (a product of two numbers is the same bits either way round)
    /// in the same order.
    pub(super) fn matmul(&mut self, v: Value, a: Value, b: Value, sums: Option<Opnd>) -> Loc {
        let (m, k) = match self.f.shape(a).dims() {
            [m, k] => (*m, *k),
            d => (1, d[0]),
        };
        let n = match self.f.shape(b).dims() {
            [_, n] => *n,
            _ => 1,
        };
        if self.f.shape(v).is_scalar() {
            let (x, y) = (self.operand(a), self.operand(b));
            let st = self.st;
            let d = self.dots(x, y, k, n, &[(Ix::c(0), Ix::c(0), st)]);
            return Loc::Reg(d[0]);
        }
        let dst = self.dest(v);
        let blocked = k > UNROLL;
        if kernel_product(self.f, v) {
            let (x, y) = (self.operand(a), self.operand(b));
            let dims = (Size::Const(m), Size::Const(n), Size::Const(k));
            let operands = (Strided::rows(x, k), Strided::rows(y, n));
            self.gemm_summing(dims, operands, (dst, n), Size::Const(0), sums);
            return self.dst_loc(dst);
        }
        assert!(sums.is_none(), "only the kernel adds up a product's rows");
        // The transpose is made before the loop over the examples, for it.
        let transposed = match (self.example, self.f.shape(b).dims()) {
            (Some(_), [_]) => self.layout.transposed_of(a),
            _ => None,
        };
        if let (true, Some(off)) = (blocked, transposed) {
            // x @ W^T: one row of m columns.
            let x = self.operand(b);
            let wt = Opnd::Mem {
                ptr: self.scratch,
                off,
                readonly: false,
            };
            self.row_times(x, wt, Ix::c(0), k, m, dst, true);
            return self.dst_loc(dst);
        }
        let (x, y) = (self.operand(a), self.operand(b));
        if blocked && n == 1 {
            let st = self.st;
            let whole = m - m % BLOCK;
            self.for_each_step(whole, BLOCK, &mut |t, row| {
                let cells: Vec<(Ix, Ix, cl::Type)> =
                    (0..BLOCK).map(|r| (row.plus(r), Ix::c(0), st)).collect();
                let d = t.dots(x, y, k, n, &cells);
                for (r, v) in d.into_iter().enumerate() {
                    t.write(dst, row.plus(r), v);
                }
            });
            let cells: Vec<(Ix, Ix, cl::Type)> =
                (whole..m).map(|r| (Ix::c(r), Ix::c(0), st)).collect();
            if !cells.is_empty() {
                let d = self.dots(x, y, k, n, &cells);
                for (r, v) in (whole..m).zip(d) {
                    self.write(dst, Ix::c(r), v);
                }
            }
            return self.dst_loc(dst);
        }
        self.for_each(m, &mut |t, row| t.row_times(x, y, row, k, n, dst, blocked));
        self.dst_loc(dst)
    }

    /// `outer(a, b)`: element `(i, j)` is `a[i] * b[j]`, pairs of columns at
    /// a time.
    pub(super) fn outer(&mut self, v: Value, a: Value, b: Value) -> Loc {
        let f = self.f;
        let (x, y) = (self.operand(a), self.operand(b));
        let dst = self.dest(v);
        let (m, n) = (f.shape(a).size(), f.shape(b).size());
        self.for_each(m, &mut |t, row| {
            let u = t.read(x, row);
            t.columns(n, &mut |t, col, ty| {
                let u = t.splat_as(ty, u);
                let v = t.read_as(ty, y, col);
                let z = t.b.ins().fmul(u, v);
                let at = t.lin(&[(row, n), (col, 1)], 0);
                t.write(dst, at, z);
            });
        });
        self.dst_loc(dst)
    }

    /// Row `row` of `x @ y` (`x` is `[_, k]`, `y` is `[k, n]`) into row `row`
    /// of `dst`: pairs of columns as f64x2, the last one alone if `n` is odd;
    /// if `blocked`, [`BLOCK`] pairs per loop over `k`, and the rest in one
    /// more.
    ///
    /// A blocked `y` of [`PASSES_FROM`] numbers or more, wider than one
    /// block of columns, is read in passes: the row of `dst` is filled with
    /// -0, then each pass over [`PASS_NUMBERS`] numbers of `y` (whole rows of
    /// it, at least [`PASS_ROWS`]) adds its products to it, a block of
    /// columns at a time. Each element still adds its products in order from
    /// -0, so the bits are the same, but `y` is read from memory once, in
    /// order, instead of once per block of columns, a cache line from each
    /// of its rows at a time (`llsq`'s gradient at n = 16392: 3.2 to 1.9 ms).
    #[expect(clippy::too_many_arguments, reason = "the operands of a product")]
    fn row_times(
        &mut self,
        x: Opnd,
        y: Opnd,
        row: Ix,
        k: usize,
        n: usize,
        dst: Opnd,
        blocked: bool,
    ) {
        if !blocked {
            self.columns(n, &mut |t, col, ty| {
                let d = t.dots(x, y, k, n, &[(row, col, ty)]);
                let at = t.lin(&[(row, n), (col, 1)], 0);
                t.write(dst, at, d[0]);
            });
            return;
        }
        if n <= self.lanes * BLOCK || k * n < PASSES_FROM {
            self.row_pass(x, y, row, (Ix::c(0), k), (k, n), dst, false);
            return;
        }
        let at = self.lin(&[(row, n)], 0);
        let dst_row = self.moved(dst, at);
        self.fill(dst_row, n, -0.0);
        let rows = (PASS_NUMBERS / n).max(PASS_ROWS);
        let passes = k - k % rows;
        self.for_each_step(passes, rows, &mut |t, from| {
            t.row_pass(x, y, row, (from, rows), (k, n), dst, true);
        });
        if passes < k {
            self.row_pass(x, y, row, (Ix::c(passes), k - passes), (k, n), dst, true);
        }
    }

    /// The products of the `len` steps from `from` of the blocked
    /// [`Self::row_times`], [`BLOCK`] pairs of columns per loop and the rest
    /// in one more, added to `dst`'s row if `add`, else from -0.
    #[expect(clippy::too_many_arguments, reason = "the operands of a product")]
    fn row_pass(
        &mut self,
        x: Opnd,
        y: Opnd,
        row: Ix,
        steps: (Ix, usize),
        (k, n): (usize, usize),
        dst: Opnd,
        add: bool,
    ) {
        let put = |t: &mut Self, cells: &[(Ix, Ix, cl::Type)]| {
            let d = t.dots_over(x, y, steps, k, n, cells, add.then_some(dst));
            for (&(_, col, _), v) in cells.iter().zip(d) {
                let at = t.lin(&[(row, n), (col, 1)], 0);
                t.write(dst, at, v);
            }
        };
        let (lanes, vt, st) = (self.lanes, self.vt, self.st);
        let whole = n - n % (lanes * BLOCK);
        self.for_each_step(whole, lanes * BLOCK, &mut |t, col| {
            let cells: Vec<(Ix, Ix, cl::Type)> =
                (0..BLOCK).map(|c| (row, col.plus(lanes * c), vt)).collect();
            put(t, &cells);
        });
        let mut cells = Vec::new();
        let mut col = whole;
        while col + lanes <= n {
            cells.push((row, Ix::c(col), vt));
            col += lanes;
        }
        while col < n {
            cells.push((row, Ix::c(col), st));
            col += 1;
        }
        if !cells.is_empty() {
            put(self, &cells);
        }
    }

    /// Dot products of rows of `x` (`[_, k]`, row-major) with columns of `y`
    /// (`[k, n]`), all in one loop over `k`: cell `(row, col, ty)` is element
    /// `(row, col)`, or with `ty` f64x2 the pair `(row, col..col + 2)`, each
    /// lane summing its own products from -0 in order. An element of `x` is
    /// loaded once per step for all the cells of its row.
    pub(super) fn dots(
        &mut self,
        x: Opnd,
        y: Opnd,
        k: usize,
        n: usize,
        cells: &[(Ix, Ix, cl::Type)],
    ) -> Vec<cl::Value> {
        self.dots_over(x, y, (Ix::c(0), k), k, n, cells, None)
    }

    /// [`Self::dots`] over the `len` steps from `from` of the `k`, each cell
    /// adding to its value in `dst` (row `row`, `n` wide) if given, else to
    /// -0.
    #[expect(clippy::too_many_arguments, reason = "the operands of a product")]
    fn dots_over(
        &mut self,
        x: Opnd,
        y: Opnd,
        (from, len): (Ix, usize),
        k: usize,
        n: usize,
        cells: &[(Ix, Ix, cl::Type)],
        dst: Option<Opnd>,
    ) -> Vec<cl::Value> {
        // Unrolled from the first term into nothing: the first product is
        // the sum so far (`-0 + p` is `p`, the same bits: a product is
        // never a signalling NaN), so neither the -0 nor the addition is
        // built.
        let fresh = dst.is_none()
            && from.dynamic.is_none()
            && from.konst == 0
            && (1..=UNROLL).contains(&len);
        let accs: Vec<Variable> = cells
            .iter()
            .map(|&(row, col, ty)| match dst {
                None if fresh => self.b.declare_var(ty),
                None => self.var_of(ty, -0.0),
                Some(dst) => {
                    let v = self.b.declare_var(ty);
                    let at = self.lin(&[(row, n), (col, 1)], 0);
                    let x = self.read_as(ty, dst, at);
                    self.b.def_var(v, x);
                    v
                }
            })
            .collect();
        self.for_each(len, &mut |t, q| {
            let p = t.lin(&[(from, 1), (q, 1)], 0);
            // (row, ty) -> the loaded (and splat) element x[row, p].
            let mut loaded: Vec<(Ix, cl::Type, cl::Value)> = Vec::new();
            for (&(row, col, ty), &acc) in cells.iter().zip(&accs) {
                let known = loaded
                    .iter()
                    .find(|(r, rty, _)| r.same(row) && *rty == ty)
                    .map(|&(_, _, u)| u);
                let ia = match known {
                    Some(_) => None,
                    None => Some(t.lin(&[(row, k), (p, 1)], 0)),
                };
                let ib = t.lin(&[(p, n), (col, 1)], 0);
                let u = match (known, ia) {
                    (Some(u), _) => u,
                    (None, ia) => {
                        let u = t.read(x, ia.expect("computed when not loaded"));
                        let u = t.splat_as(ty, u);
                        loaded.push((row, ty, u));
                        u
                    }
                };
                let v = t.read_as(ty, y, ib);
                let prod = t.b.ins().fmul(u, v);
                let s = if fresh && q.konst == 0 {
                    prod
                } else {
                    let s = t.b.use_var(acc);
                    t.b.ins().fadd(s, prod)
                };
                t.b.def_var(acc, s);
            }
        });
        accs.iter().map(|&acc| self.b.use_var(acc)).collect()
    }
}
