//! A fused run (see [`crate::backend::plan::fuse`]) as one loop: every
//! element of every member computed in turn, in registers, only the members
//! read outside the run stored, and a `sum` adding the elements as they
//! come, in the same order as a separate loop would.

use std::collections::BTreeMap;

use cranelift_codegen::ir::{self as cl, InstBuilder};
use cranelift_frontend::Variable;

use super::math::PAIRS;
use super::nest::Columns;
use super::{Ix, Loc, Opnd, Translator};
use crate::backend::plan::fuse::{lag, ElementOp, Member};
use crate::ir::interp::SUM_BLOCK;
use crate::ir::{Binary, Reduce, Value, ValueMap};

/// A run being translated: its instructions and what each is, where its
/// arguments from outside are, and where its results go.
pub(super) struct Run<'r> {
    pub(super) insts: &'r [Value],
    pub(super) members: Vec<Member>,
    /// The arguments from outside the run: a scalar loaded once (and its
    /// splat for pairs), a tensor read element by element (twice the same).
    pub(super) outside: BTreeMap<Value, (Opnd, Opnd)>,
    /// The scratch slots of the members that are stored.
    pub(super) dests: BTreeMap<Value, Opnd>,
    /// The accumulators of the `sum`s (of their current block, if the run
    /// is longer than one: see `super::sums`).
    pub(super) sums: BTreeMap<Value, Variable>,
    /// In a run of more than one block, each `sum`'s total of the blocks
    /// closed.
    pub(super) totals: BTreeMap<Value, Variable>,
    /// In a nest or a `concat` of more than one block with sums: the
    /// elements left in the current block.
    pub(super) left: Option<Variable>,
    /// In a run in parts with sums: where each block's sums go, a row of
    /// them a block.
    pub(super) partials: Option<Opnd>,
    /// In the loop over a row of a run with spreads: where each spread's
    /// elements are read, as `outside` (its argument's element, loaded once
    /// for the row and splat, if the row repeats it; else its argument's
    /// row). In the loop over a part of a `concat`: that part.
    pub(super) spreads: BTreeMap<Value, (Opnd, Opnd)>,
    /// Each shifted member ([`Member::Lag`], [`Member::Lead`]): the member
    /// it shifts, and a variable that keeps that member's last element
    /// computed (in the lane next to the ones to come, when the run goes
    /// by pairs: the last going up, the first going down).
    pub(super) shifts: BTreeMap<Value, (Value, Variable)>,
}

impl Translator<'_, '_> {
    /// Translates a run of two or more instructions as one loop, or, if it
    /// is large and its elements independent, in parts on several threads
    /// (`super::parts`). `internal` marks the members that nothing outside
    /// the run reads: they get no location.
    pub(super) fn fused(&mut self, run: &[Value], internal: &ValueMap<bool>) -> Result<(), String> {
        let f = self.f;
        let n = f.shape(run[0]).size();
        // What each member is: the plan makes runs of members only.
        let members: Vec<Member> = run
            .iter()
            .map(|&v| {
                Member::in_run(f, v, |m| run.contains(&m))
                    .expect("plan::fuse::steps runs members only")
            })
            .collect();
        // A run with spreads or sums of rows is a nest over its first
        // member's shape (theirs), whose rows are the vectors; a joined
        // product's over that of its reshape, if it is read through one.
        let leading = members
            .iter()
            .take_while(|&&m| m == Member::Product)
            .count();
        let nest = members
            .iter()
            .any(|&m| matches!(m, Member::Spread | Member::Rows(_) | Member::Product))
            .then(|| f.shape(run[leading.max(1) - 1]).clone());
        let along = nest.as_ref().map_or(n, |s| s.dims()[s.rank() - 1]);
        let simd = along >= self.lanes
            && members.iter().all(|&m| match m {
                Member::Map(op) => self.lane_wise(op),
                Member::Spread
                | Member::Pieces
                | Member::Lag
                | Member::Lead
                | Member::ShiftSlice
                | Member::Product
                | Member::Sum
                | Member::Rows(_) => true,
            });
        let outside = self.outside(run, &members, simd);
        let shifts = self.shifts(run, &members, simd);
        let (dests, sums) = self.results(run, &members, internal);
        let concat = run
            .iter()
            .zip(&members)
            .find_map(|(&v, &m)| (m == Member::Pieces).then_some(v));
        // A sum of more than one block: its blocks' totals, and in a nest
        // or a `concat`, a count of the elements left in the block.
        let blocked = n > SUM_BLOCK && !sums.is_empty();
        let totals = match blocked {
            true => sums.keys().map(|&v| (v, self.var(-0.0))).collect(),
            false => BTreeMap::new(),
        };
        let left = (blocked && (nest.is_some() || concat.is_some())).then(|| self.block_counter());
        let r = Run {
            insts: run,
            members,
            outside,
            dests,
            sums,
            totals,
            left,
            partials: None,
            spreads: BTreeMap::new(),
            shifts,
        };
        let (lanes, vt, st) = (self.lanes, self.vt, self.st);
        let down = r.members.contains(&Member::Lead);
        let parts = self.splittable(&r, n);
        if let (Member::Product, Some(shape)) = (r.members[0], &nest) {
            self.product_blocks(&r, shape, simd, parts)?;
        } else if let Some(shape) = nest {
            if !(parts && self.nest_in_parts(&r, &shape, simd)?) {
                let all = Columns::all(&shape);
                self.rows_of(&r, &shape, simd, all);
            }
        } else if down {
            // From the last element to the first: the last ones alone,
            // then the vectors.
            let ty = if simd { vt } else { st };
            let step = if simd { lanes } else { 1 };
            for k in (n - n % step..n).rev() {
                self.element(&r, Ix::c(k), st);
            }
            self.for_each_step_down(n - n % step, step, &mut |t, ix| t.element(&r, ix, ty));
        } else if let Some(c) = concat {
            self.parts_of(&r, c, simd);
        } else if blocked {
            self.flat_blocks(&r, n, simd, parts)?;
        } else if parts {
            let done = self.chunks_in_parts(&r, n, simd)?;
            let rest = self.from(&r, Ix::c(done));
            self.flat(&rest, n - done, simd);
        } else if simd && !n.is_multiple_of(lanes) && self.recomputable(&r) {
            self.for_each_overlapped(n, lanes, &mut |t, ix| t.element(&r, ix, vt));
        } else {
            self.flat(&r, n, simd);
        }
        for &v in run {
            if let Some(&acc) = r.sums.get(&v) {
                // The last block's sum, after the others'.
                let mut s = self.b.use_var(acc);
                if let Some(&total) = r.totals.get(&v) {
                    let t = self.b.use_var(total);
                    s = self.b.ins().fadd(t, s);
                }
                self.set_loc(v, Loc::Reg(s));
            } else if let Some(&dst) = r.dests.get(&v) {
                self.set_loc(v, self.dst_loc(dst));
            }
        }
        Ok(())
    }

    /// The `n` elements of a run from its first (or of a row of its nest,
    /// or a part of its `concat`): vectors (if `simd`; four pairs at a
    /// time if it has an eight-wide member), then the last elements one by
    /// one.
    pub(super) fn flat(&mut self, r: &Run, n: usize, simd: bool) {
        let (lanes, vt, st) = (self.lanes, self.vt, self.st);
        if simd && self.by_eights(r) {
            // Four pairs a step, then the pairs left one by one.
            let step = PAIRS * lanes;
            let eights = n - n % step;
            self.for_each_step(eights, step, &mut |t, ix| t.elements(r, ix, vt, PAIRS));
            for k in (eights..n - n % lanes).step_by(lanes) {
                self.element(r, Ix::c(k), vt);
            }
            for k in n - n % lanes..n {
                self.element(r, Ix::c(k), st);
            }
        } else if simd {
            self.for_each_vector(n - n % lanes, lanes, &mut |t, ix| t.element(r, ix, vt));
            for k in n - n % lanes..n {
                self.element(r, Ix::c(k), st);
            }
        } else {
            self.for_each(n, &mut |t, ix| t.element(r, ix, st));
        }
    }

    /// A run with a `concat` `c`: a loop over each part's block of
    /// elements in turn, every operand read and written from the block's
    /// first element, the `concat`'s elements read from the part in place.
    /// The elements come in order, as in one loop.
    fn parts_of(&mut self, r: &Run, c: Value, simd: bool) {
        let f = self.f;
        let mut at = 0;
        for &p in &f.inst(c).args {
            let n = f.shape(p).size();
            let mut block = self.from(r, Ix::c(at));
            block.spreads.insert(c, r.outside[&p]);
            self.flat(&block, n, simd);
            at += n;
        }
    }

    /// The run `r` from its element `start` on: every operand read and
    /// written (but the spreads') moved there.
    pub(super) fn from<'r>(&mut self, r: &Run<'r>, start: Ix) -> Run<'r> {
        let mut moved = Run {
            insts: r.insts,
            members: r.members.clone(),
            outside: BTreeMap::new(),
            dests: BTreeMap::new(),
            sums: r.sums.clone(),
            totals: r.totals.clone(),
            left: r.left,
            partials: r.partials,
            spreads: BTreeMap::new(),
            shifts: r.shifts.clone(),
        };
        for (&a, &(narrow, wide)) in &r.outside {
            let pair = (self.moved(narrow, start), self.moved(wide, start));
            moved.outside.insert(a, pair);
        }
        for (&v, &dst) in &r.dests {
            moved.dests.insert(v, self.moved(dst, start));
        }
        moved
    }

    /// Whether the run may compute an element twice, with the same bits:
    /// it adds up nothing, keeps nothing from one element to the next
    /// (no shifts), and it stores only to scratch slots that no
    /// tensor it reads shares. The layout gives a step's results slots
    /// free at that step, so this holds of every scratch slot; a stacked
    /// row, and a tensor read through a pointer computed at run time, are
    /// not compared and do not qualify.
    fn recomputable(&self, r: &Run) -> bool {
        if r.members.iter().any(|m| {
            matches!(
                m,
                Member::Sum | Member::Rows(_) | Member::Lag | Member::Lead
            )
        }) {
            return false;
        }
        self.stores_apart(r, r.outside.keys().copied())
    }

    /// Whether `r` stores only to scratch slots and outputs' buffers, and
    /// none of the slots shares memory with a value of `reads` (each in a
    /// register, in the caller's buffers or a constant, in an output's
    /// buffer, which is the caller's own, or in a scratch slot elsewhere).
    pub(super) fn stores_apart(&self, r: &Run, reads: impl IntoIterator<Item = Value>) -> bool {
        let f = self.f;
        let output = |ptr: cl::Value| {
            self.written
                .iter()
                .any(|&(_, o)| matches!(o, Opnd::Mem { ptr: p, .. } if p == ptr))
        };
        let mut written = Vec::with_capacity(r.dests.len());
        for (&v, dst) in &r.dests {
            match *dst {
                Opnd::Mem { ptr, off, .. } if ptr == self.scratch => {
                    written.push(off..off + f.shape(v).size());
                }
                Opnd::Mem { ptr, .. } if output(ptr) => {}
                _ => return false,
            }
        }
        reads.into_iter().all(|a| match self.loc(a) {
            Loc::Reg(_) | Loc::Table(..) | Loc::Data(..) => true,
            Loc::Row(ptr, _) if output(ptr) => true,
            Loc::Scratch(off) => {
                let read = off..off + f.shape(a).size();
                written
                    .iter()
                    .all(|w| w.end <= read.start || read.end <= w.start)
            }
            Loc::Ptr(..) | Loc::Row(..) => false,
        })
    }

    /// The operands of the arguments from outside the run: scalars loaded
    /// once (and splat for pairs if `simd`), tensors read element by element.
    /// (A shifted member's are read by [`Self::shifts`].)
    fn outside(
        &mut self,
        run: &[Value],
        members: &[Member],
        simd: bool,
    ) -> BTreeMap<Value, (Opnd, Opnd)> {
        let f = self.f;
        let mut outside: BTreeMap<Value, (Opnd, Opnd)> = BTreeMap::new();
        for (&v, &m) in run.iter().zip(members) {
            // A lag of a tensor from memory reads it element by element.
            let shifted = match m {
                Member::Lag => lag(f, v).map(|(_, m)| m).filter(|m| !run.contains(m)),
                _ => None,
            };
            if let Some(s) = shifted.filter(|s| !outside.contains_key(s)) {
                let o = self.operand(s);
                outside.insert(s, (o, o));
            }
            if matches!(m, Member::Lag | Member::Lead) {
                continue;
            }
            for &a in &f.inst(v).args {
                if run.contains(&a) || outside.contains_key(&a) {
                    continue;
                }
                let o = self.operand(a);
                let pair = if f.shape(a).is_scalar() {
                    let x = self.read(o, Ix::c(0));
                    let wide = if simd {
                        self.b.ins().splat(self.vt, x)
                    } else {
                        x
                    };
                    (Opnd::Reg(x), Opnd::Reg(wide))
                } else {
                    (o, o)
                };
                outside.insert(a, pair);
            }
        }
        outside
    }

    /// Where the run's results go: the slots of the stored members, and an
    /// accumulator from -0 for every `sum`.
    fn results(
        &mut self,
        run: &[Value],
        members: &[Member],
        internal: &ValueMap<bool>,
    ) -> (BTreeMap<Value, Opnd>, BTreeMap<Value, Variable>) {
        let mut dests: BTreeMap<Value, Opnd> = BTreeMap::new();
        let mut sums: BTreeMap<Value, Variable> = BTreeMap::new();
        for (&v, &m) in run.iter().zip(members) {
            match m {
                Member::Sum => {
                    sums.insert(v, self.var(-0.0));
                }
                Member::Map(_) | Member::Spread | Member::Pieces | Member::Lag | Member::Lead
                    if !internal[v] =>
                {
                    dests.insert(v, self.dest(v));
                }
                Member::Map(_)
                | Member::Spread
                | Member::Pieces
                | Member::Lag
                | Member::Lead
                | Member::ShiftSlice
                | Member::Product => {}
                Member::Rows(kind) => {
                    let dst = self.dest(v);
                    let from = match kind {
                        Reduce::Max => f64::NEG_INFINITY,
                        _ => -0.0,
                    };
                    self.fill(dst, self.f.shape(v).size(), from);
                    dests.insert(v, dst);
                }
            }
        }
        (dests, sums)
    }

    /// Element `ix` (a pair of them if `ty` is f64x2) of every member of
    /// the run, in order.
    pub(super) fn element(&mut self, r: &Run, ix: Ix, ty: cl::Type) {
        self.elements(r, ix, ty, 1);
    }

    /// The `k` elements (or pairs, if `ty` is f64x2) from `ix` on of every
    /// member of the run, in order, each member's side by side: an
    /// eight-wide member (`exp`, `sigmoid`, `tanh`) of four pairs is one
    /// call (`Translator::math_of_pairs`). Each element is the same
    /// computation as alone, and a `sum` adds them in order.
    pub(super) fn elements(&mut self, r: &Run, ix: Ix, ty: cl::Type, k: usize) {
        let f = self.f;
        let at: Vec<Ix> = (0..k)
            .map(|j| ix.plus(j * ty.lane_count() as usize))
            .collect();
        let mut vals: BTreeMap<Value, Vec<cl::Value>> = BTreeMap::new();
        let mut adds = vec![Vec::new(); k];
        for (&v, &m) in r.insts.iter().zip(&r.members) {
            let inst = f.inst(v);
            let xs: Vec<cl::Value> = match m {
                Member::Spread | Member::Pieces | Member::Product => {
                    let (narrow, wide) = r.spreads[&v];
                    let o = if ty.is_vector() { wide } else { narrow };
                    at.iter().map(|&i| self.read_as(ty, o, i)).collect()
                }
                Member::ShiftSlice => continue,
                Member::Lag | Member::Lead => {
                    let (shifted, keep) = r.shifts[&v];
                    // The element of a tensor from memory is read here, at
                    // its place (before a member written over it).
                    let cur = vals
                        .entry(shifted)
                        .or_insert_with(|| {
                            let (narrow, wide) = r.outside[&shifted];
                            let o = if ty.is_vector() { wide } else { narrow };
                            at.iter().map(|&i| self.read_as(ty, o, i)).collect()
                        })
                        .clone();
                    cur.iter().map(|&c| self.shifted(m, keep, c, ty)).collect()
                }
                Member::Sum | Member::Rows(_) | Member::Map(_) => {
                    let mut args = Vec::with_capacity(inst.args.len());
                    for &a in &inst.args {
                        let x = vals.entry(a).or_insert_with(|| {
                            let (narrow, wide) = r.outside[&a];
                            let o = if ty.is_vector() { wide } else { narrow };
                            at.iter().map(|&i| self.read_as(ty, o, i)).collect()
                        });
                        args.push(x.clone());
                    }
                    match m {
                        Member::Sum => {
                            for (j, add) in adds.iter_mut().enumerate() {
                                add.push((v, args[0][j]));
                            }
                            continue;
                        }
                        Member::Rows(kind) => {
                            let dst = r.dests[&v];
                            for (j, &i) in at.iter().enumerate() {
                                let acc = self.read_as(ty, dst, i);
                                let x = args[0][j];
                                let y = match kind {
                                    Reduce::Max => {
                                        self.apply(ElementOp::Binary(Binary::Max), &[acc, x])
                                    }
                                    _ => self.b.ins().fadd(acc, x),
                                };
                                self.write(dst, i, y);
                            }
                            continue;
                        }
                        Member::Map(ElementOp::Unary(u))
                            if k == PAIRS && ty.is_vector() && self.eight_wide(u) =>
                        {
                            self.math_of_pairs(u, &args[0])
                        }
                        Member::Map(op) => (0..k)
                            .map(|j| {
                                let xs: Vec<cl::Value> = args.iter().map(|a| a[j]).collect();
                                self.apply(op, &xs)
                            })
                            .collect(),
                        _ => unreachable!("matched above"),
                    }
                }
            };
            if let Some(&dst) = r.dests.get(&v) {
                for (&i, &x) in at.iter().zip(&xs) {
                    self.write(dst, i, x);
                }
            }
            vals.insert(v, xs);
        }
        for add in &adds {
            self.add_to_sums(r, add, ty);
        }
    }

    /// Whether the run's vectors go [`PAIRS`] at a time: it has an
    /// eight-wide member.
    pub(super) fn by_eights(&self, r: &Run) -> bool {
        r.members.iter().any(|&m| match m {
            Member::Map(ElementOp::Unary(u)) => self.eight_wide(u),
            _ => false,
        })
    }
}
