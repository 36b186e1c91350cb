//! A run's shifted members ([`Member::Lag`], [`Member::Lead`]): each
//! element the one next to it of the member it shifts, kept in a variable
//! from the element before (see `super::fuse`).

use std::collections::BTreeMap;

use cranelift_codegen::ir::{self as cl, types, Endianness, InstBuilder, MemFlagsData};
use cranelift_frontend::Variable;

use super::{Ix, Translator};
use crate::backend::plan::fuse::{lag, lead, Member};
use crate::ir::Value;

impl Translator<'_, '_> {
    /// The shifted members' variables, each holding its first element (a
    /// lag's `concat`'s first part, a lead's 0, in every lane) until the
    /// member it shifts has an element: a vector when the run goes by
    /// pairs (`simd`).
    pub(super) fn shifts(
        &mut self,
        run: &[Value],
        members: &[Member],
        simd: bool,
    ) -> BTreeMap<Value, (Value, Variable)> {
        let f = self.f;
        let mut shifts = BTreeMap::new();
        for (&v, &m) in run.iter().zip(members) {
            let (first, shifted) = match m {
                Member::Lag => {
                    let (a, shifted) = lag(f, v).expect("a Lag member is a lag");
                    let a = self.operand(a);
                    (self.read(a, Ix::c(0)), shifted)
                }
                Member::Lead => (
                    self.fconst(0.0),
                    lead(f, v).expect("a Lead member is a lead"),
                ),
                _ => continue,
            };
            let ty = if simd { self.vt } else { self.st };
            let keep = self.b.declare_var(ty);
            let first = self.splat_as(ty, first);
            self.b.def_var(keep, first);
            shifts.insert(v, (shifted, keep));
        }
        shifts
    }

    /// Element `ix` of a shifted member (a pair of them if `ty` is a
    /// vector): the kept element next to it (before it for a lag, after
    /// it for a lead), then `cur`, the element (or the pair) of the member
    /// it shifts just computed, is kept.
    pub(super) fn shifted(
        &mut self,
        m: Member,
        keep: Variable,
        cur: cl::Value,
        ty: cl::Type,
    ) -> cl::Value {
        let up = m == Member::Lag;
        let kept = self.b.use_var(keep);
        let kept_ty = self.b.func.dfg.value_type(kept);
        if ty.is_vector() {
            // Going up, the last lane of `kept`, then all but the last of
            // `cur`: bytes 16 - w to 32 - w of the two side by side.
            // Going down, all but the first of `cur`, then the first of
            // `kept`: bytes w to 16 + w of `cur` and `kept`.
            let w = 16 / ty.lane_count() as u8;
            let (bytes, (a, b)): (Vec<u8>, _) = if up {
                ((16 - w..32 - w).collect(), (kept, cur))
            } else {
                ((w..16 + w).collect(), (cur, kept))
            };
            let mask = self.b.func.dfg.immediates.push(bytes.into());
            let little = MemFlagsData::new().with_endianness(Endianness::Little);
            let a = self.b.ins().bitcast(types::I8X16, little, a);
            let b = self.b.ins().bitcast(types::I8X16, little, b);
            let x = self.b.ins().shuffle(a, b, mask);
            self.b.def_var(keep, cur);
            return self.b.ins().bitcast(ty, little, x);
        }
        if !kept_ty.is_vector() {
            self.b.def_var(keep, cur);
            return kept;
        }
        let lane = if up {
            kept_ty.lane_count() as u8 - 1
        } else {
            0
        };
        let x = self.b.ins().extractlane(kept, lane);
        let wide = self.b.ins().splat(kept_ty, cur);
        self.b.def_var(keep, wide);
        x
    }
}
