//! Sums of more than [`SUM_BLOCK`] elements, as [`crate::ir::interp::sum`]
//! defines them: in blocks, each block's elements added in order from -0,
//! then the blocks' sums in order from -0. (Of [`SUM_BLOCK`] elements or
//! fewer, a sum is its elements in order, one accumulator.)
//!
//! - A flat run (no nest, no `concat`) goes over its blocks in a loop,
//!   [`SIDE`] blocks side by side (then two, then one) when it keeps
//!   nothing from one element to the next (no shift), so that their chains
//!   of additions overlap (each block four pairs at a time if the run has
//!   an eight-wide member, `Translator::elements`), else one at a time;
//!   or, if it is large, in parts on several threads (`super::parts`),
//!   each part [`SIDE`] blocks side by side whose sums it stores for the
//!   calling function, which adds them up in order.
//! - Any other run (a nest, a `concat`) counts the elements left in the
//!   current block: at the block's last element, its sum is added to the
//!   total and the accumulator starts again from -0 (by selects, no
//!   branch).
//! - A `sum` of a tensor computed before (not in a run) goes two blocks
//!   side by side.

use std::collections::BTreeMap;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{self as cl, InstBuilder, StackSlotData, StackSlotKind};
use cranelift_frontend::Variable;

use super::fuse::Run;
use super::math::PAIRS;
use super::{Ix, Opnd, Translator};
use crate::backend::plan::fuse::Member;
use crate::ir::interp::SUM_BLOCK;
use crate::ir::Value;

/// The most blocks' sums a run in parts stores on its caller's stack (64
/// KiB of f64s); a run with more goes on one thread.
const PARTIALS_MAX: usize = 1 << 13;

/// The blocks a run adds up side by side: their chains of additions
/// overlap (`lse`'s primal at 320,000 elements on one thread 4.5% faster
/// than with two side by side).
const SIDE: usize = 4;

impl Translator<'_, '_> {
    /// A variable counting the elements left in the current block of a
    /// run's sums, from a whole block.
    pub(super) fn block_counter(&mut self) -> Variable {
        let left = self.b.declare_var(self.ptr);
        let whole = self.b.ins().iconst(self.ptr, SUM_BLOCK as i64);
        self.b.def_var(left, whole);
        left
    }

    /// Adds each of `adds` (a member's element, or its lanes in order, if
    /// `ty` is a vector) to its `sum`'s accumulator in `r`; with a block
    /// counter, a block ending at a lane is added to its total there and
    /// its accumulator starts again from -0.
    pub(super) fn add_to_sums(&mut self, r: &Run, adds: &[(Value, cl::Value)], ty: cl::Type) {
        let Some(left) = r.left else {
            for &(v, x) in adds {
                self.add_lanes(r.sums[&v], ty, x);
            }
            return;
        };
        let lanes = ty.lane_count() as i64;
        let count = self.b.use_var(left);
        for lane in 0..lanes {
            let ends = self.b.ins().icmp_imm_s(IntCC::Equal, count, lane + 1);
            for &(v, x) in adds {
                let x = if ty.is_vector() {
                    self.b.ins().extractlane(x, lane as u8)
                } else {
                    x
                };
                let (acc, total) = (r.sums[&v], r.totals[&v]);
                let a = self.b.use_var(acc);
                let s = self.b.ins().fadd(a, x);
                let t = self.b.use_var(total);
                let closed = self.b.ins().fadd(t, s);
                let t = self.b.ins().select(ends, closed, t);
                self.b.def_var(total, t);
                let zero = self.fconst(-0.0);
                let s = self.b.ins().select(ends, zero, s);
                self.b.def_var(acc, s);
            }
        }
        let next = self.b.ins().iadd_imm_s(count, -lanes);
        let wrapped = self.b.ins().iadd_imm_s(next, SUM_BLOCK as i64);
        let done = self
            .b
            .ins()
            .icmp_imm_s(IntCC::SignedLessThanOrEqual, next, 0);
        let next = self.b.ins().select(done, wrapped, next);
        self.b.def_var(left, next);
    }

    /// Adds the lanes of `x` (an element, or a vector) to `acc` in order,
    /// as `Translator::sum` adds elements.
    fn add_lanes(&mut self, acc: Variable, ty: cl::Type, x: cl::Value) {
        for lane in 0..ty.lane_count() {
            let x = if !ty.is_vector() {
                x
            } else {
                self.b.ins().extractlane(x, lane as u8)
            };
            let s = self.b.use_var(acc);
            let s = self.b.ins().fadd(s, x);
            self.b.def_var(acc, s);
        }
    }

    /// Each accumulator of `accs` added to its total in `totals`, then
    /// from -0 again: a block's sums closed.
    fn close_block(
        &mut self,
        accs: &BTreeMap<Value, Variable>,
        totals: &BTreeMap<Value, Variable>,
    ) {
        for (v, &acc) in accs {
            let a = self.b.use_var(acc);
            let t = self.b.use_var(totals[v]);
            let t = self.b.ins().fadd(t, a);
            self.b.def_var(totals[v], t);
            let zero = self.fconst(-0.0);
            self.b.def_var(acc, zero);
        }
    }

    /// The flat run `r` of `n` elements (more than a block) with sums:
    /// its whole blocks in order, each closed into the totals (in parts of
    /// [`SIDE`] blocks if `parts` and their sums fit [`PARTIALS_MAX`]);
    /// the others [`SIDE`], then two, side by side, or, with shifts, one
    /// at a time; then the elements after them, left in the accumulators
    /// (the last block, maybe empty).
    pub(super) fn flat_blocks(
        &mut self,
        r: &Run,
        n: usize,
        simd: bool,
        parts: bool,
    ) -> Result<(), String> {
        let blocks = n / SUM_BLOCK;
        let sums = r.sums.len();
        let mut done = 0;
        if parts && blocks >= SIDE && blocks * sums <= PARTIALS_MAX {
            let groups = blocks / SIDE;
            let bytes = ((groups * SIDE * sums) << self.shift) as u32;
            let slot = self.b.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                bytes,
                self.shift as u8,
            ));
            let buffer = Opnd::Mem {
                ptr: self.b.ins().stack_addr(self.ptr, slot, 0),
                off: 0,
                readonly: false,
            };
            let mut all = self.from(r, Ix::c(0));
            all.partials = Some(buffer);
            self.in_parts(&all, (groups, SIDE * SUM_BLOCK), &mut |t, r, i| {
                let accs: Vec<_> = (0..SIDE).map(|_| t.fresh_sums(r)).collect();
                let first = t.lin(&[(i, SIDE * SUM_BLOCK)], 0);
                t.side_by_side(r, first, &accs, simd);
                for (k, accs) in accs.iter().enumerate() {
                    let block = t.lin(&[(i, SIDE)], k);
                    t.store_partials(r, accs, block);
                }
            })?;
            done = groups * SIDE;
            self.for_each_rolled(done, &mut |t, i| {
                for (j, (_, &total)) in r.totals.iter().enumerate() {
                    let at = t.lin(&[(i, sums)], j);
                    let x = t.read(buffer, at);
                    let s = t.b.use_var(total);
                    let s = t.b.ins().fadd(s, x);
                    t.b.def_var(total, s);
                }
            });
        }
        if r.shifts.is_empty() {
            for width in [SIDE, 2] {
                let groups = (blocks - done) / width;
                if groups == 0 {
                    continue;
                }
                // The first block's accumulators the run's, the others apart.
                let mut accs = vec![r.sums.clone()];
                accs.extend((1..width).map(|_| self.fresh_sums(r)));
                let start = done * SUM_BLOCK;
                self.for_each_rolled(groups, &mut |t, g| {
                    let first = t.lin(&[(g, width * SUM_BLOCK)], start);
                    t.side_by_side(r, first, &accs, simd);
                    for acc in &accs {
                        t.close_block(acc, &r.totals);
                    }
                });
                done += groups * width;
            }
        }
        // The blocks left (one at most without shifts), one at a time.
        let left = blocks - done;
        let start = done * SUM_BLOCK;
        self.for_each_rolled(left, &mut |t, i| {
            let at = t.lin(&[(i, SUM_BLOCK)], start);
            let block = t.from(r, at);
            t.flat(&block, SUM_BLOCK, simd);
            t.close_block(&r.sums, &r.totals);
        });
        let rest = self.from(r, Ix::c(blocks * SUM_BLOCK));
        self.flat(&rest, n % SUM_BLOCK, simd);
        Ok(())
    }

    /// An accumulator from -0 for each `sum` of `r`.
    fn fresh_sums(&mut self, r: &Run) -> BTreeMap<Value, Variable> {
        let sums = r.insts.iter().zip(&r.members);
        let sums = sums.filter(|&(_, &m)| m == Member::Sum);
        sums.map(|(&v, _)| (v, self.var(-0.0))).collect()
    }

    /// The blocks of `r` from its element `first` on, one for each of
    /// `accs`, side by side (an element, a pair or four pairs of each in
    /// turn), each's sums into its own accumulators.
    fn side_by_side(&mut self, r: &Run, first: Ix, accs: &[BTreeMap<Value, Variable>], simd: bool) {
        let (lanes, vt, st) = (self.lanes, self.vt, self.st);
        let runs: Vec<Run> = accs
            .iter()
            .enumerate()
            .map(|(k, acc)| {
                let mut block = self.from(r, first.plus(k * SUM_BLOCK));
                block.sums = acc.clone();
                block
            })
            .collect();
        let all = |t: &mut Self, ix: Ix, ty, k| {
            for block in &runs {
                t.elements(block, ix, ty, k);
            }
        };
        if simd && self.by_eights(r) {
            let step = PAIRS * lanes;
            self.for_each_step(SUM_BLOCK, step, &mut |t, ix| all(t, ix, vt, PAIRS));
        } else if simd {
            self.for_each_vector(SUM_BLOCK, lanes, &mut |t, ix| all(t, ix, vt, 1));
        } else {
            self.for_each(SUM_BLOCK, &mut |t, ix| all(t, ix, st, 1));
        }
    }

    /// In a part of a run with sums, a block just computed with fresh
    /// accumulators (`accs`): their values stored to the run's partials,
    /// the block's row of them (`i` its index).
    pub(super) fn store_partials(&mut self, r: &Run, accs: &BTreeMap<Value, Variable>, i: Ix) {
        let buffer = r.partials.expect("a run in parts with sums has partials");
        for (j, &acc) in accs.values().enumerate() {
            let at = self.lin(&[(i, accs.len())], j);
            let x = self.b.use_var(acc);
            self.write(buffer, at, x);
        }
    }

    /// The sum of the tensor `v`: two blocks at a time side by side, each
    /// added in order into an accumulator of its own, then the block left
    /// if their number is odd, then the elements after the last whole
    /// block; each block's sum added to the total in order.
    pub(super) fn sum_in_blocks(&mut self, v: Value) -> cl::Value {
        let n = self.f.shape(v).size();
        let x = self.operand(v);
        let total = self.var(-0.0);
        let accs = [self.var(-0.0), self.var(-0.0)];
        let add = |t: &mut Self, acc: Variable, x: Opnd, ix: Ix| {
            let e = t.read(x, ix);
            let a = t.b.use_var(acc);
            let s = t.b.ins().fadd(a, e);
            t.b.def_var(acc, s);
        };
        let close = |t: &mut Self, acc: Variable| {
            let a = t.b.use_var(acc);
            let s = t.b.use_var(total);
            let s = t.b.ins().fadd(s, a);
            t.b.def_var(total, s);
            let zero = t.fconst(-0.0);
            t.b.def_var(acc, zero);
        };
        let blocks = n / SUM_BLOCK;
        self.for_each_rolled(blocks / 2, &mut |t, p| {
            let first = t.lin(&[(p, 2 * SUM_BLOCK)], 0);
            let xs = [first, first.plus(SUM_BLOCK)].map(|at| t.moved(x, at));
            t.for_each_two(SUM_BLOCK, &mut |t, ix| {
                add(t, accs[0], xs[0], ix);
                add(t, accs[1], xs[1], ix);
            });
            close(t, accs[0]);
            close(t, accs[1]);
        });
        let whole = blocks / 2 * 2 * SUM_BLOCK;
        for (start, len) in [
            (whole, blocks % 2 * SUM_BLOCK),
            (blocks * SUM_BLOCK, n % SUM_BLOCK),
        ] {
            if len > 0 {
                let xs = self.moved(x, Ix::c(start));
                self.for_each_two(len, &mut |t, ix| add(t, accs[0], xs, ix));
                close(self, accs[0]);
            }
        }
        self.b.use_var(total)
    }
}
