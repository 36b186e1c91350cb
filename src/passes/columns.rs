//! Sums of pieces placed along one axis, whole chains at once: the sum of
//! `unslice(a)`, `unslice(b)`, ... into one shape, each piece whole on
//! every axis but one, the same axis for all (the gradient of a tensor
//! read column by column: `cams[:, 6:7]`, `cams[:, 7:9]`, a cross
//! product's `x[:, 1]` read twice). Pieces at the same place are added to
//! each other first, and places that do not meet become one `concat` along
//! the axis (between `permute`s that move the axis first and back when it
//! is not the leading one), zeros between them, placed by one `unslice`
//! when they do not cover the axis: one tensor written, where each piece
//! was written out whole with its zeros, then added.
//!
//! [`super::placed`] joins two pieces of the leading axis side by side; a
//! chain whose pieces repeat places (`c0 + c1 + c2 + c0' + c1' + c2'`)
//! needs the whole chain, as here. Only chains whose every term is such a
//! piece: each element is then the sum of the same numbers in the same
//! order (the sign of a zero aside, as [`super::algebra`]'s `x + 0 -> x`).

use super::splat;
use crate::ir::{Binary, Function, Inst, Op, SliceAxis, Value, ValueMap};
use crate::shape::Shape;
use crate::span::Span;

pub fn run(f: &mut Function) -> bool {
    if !f.insts().iter().any(|i| matches!(i.op, Op::Unslice(..))) {
        return false;
    }
    let chains = chains(f);
    if chains.iter().all(Option::is_none) {
        return false;
    }
    // The value of `f`'s k-th instruction in the function being built.
    let mut map: Vec<Value> = Vec::with_capacity(f.insts().len());
    f.rewrite(|out, inst| {
        let old = map.len();
        let new = chains[old]
            .as_ref()
            .map(|c| placed(out, c, &map, inst.span));
        map.push(new.unwrap_or_else(|| out.next_value()));
        new
    })
}

/// A chain of additions to rewrite: its pieces, in the order the chain
/// adds them (values of the function before the rewrite), the axis they
/// are placed along, and the shape of the sum.
struct Chain {
    pieces: Vec<(Value, (usize, usize))>,
    axis: usize,
    shape: Shape,
}

/// For each instruction of `f`, the chain it ends, if it is the last
/// addition of one whose terms are all pieces along one axis at places
/// that are equal or do not meet. A chain goes through the additions of
/// its shape that only it reads; it ends where the next addition adds
/// something else.
fn chains(f: &Function) -> Vec<Option<Chain>> {
    let mut readers = ValueMap::new(f, 0usize);
    let mut reader = ValueMap::new(f, None);
    for (v, inst) in f.iter() {
        for &a in &inst.args {
            readers[a] += 1;
            reader[a] = Some(v);
        }
    }
    for o in &f.outputs {
        readers[o.value] += 1;
    }
    let adds = |v: Value, s: &Shape| is_add(f.inst(v)) && f.shape(v) == s;
    let inner = |v: Value, s: &Shape| adds(v, s) && readers[v] == 1;
    let mut chains: Vec<Option<Chain>> = Vec::with_capacity(f.insts().len());
    for (v, inst) in f.iter() {
        let s = &inst.shape;
        // Each term a piece or an addition of pieces (whose chain is known
        // already): whole chains of other terms cost one look each.
        let pieces = |&a: &Value| piece(f, a, s).is_some() || chains[a.index()].is_some();
        let mut c = None;
        if is_add(inst) && !s.is_scalar() && inst.args.iter().all(pieces) {
            let mut terms = Vec::new();
            collect(f, v, &|a| inner(a, s), &mut terms);
            c = chain(f, &terms, s);
        }
        chains.push(c);
    }
    for (v, inst) in f.iter() {
        let absorbed = reader[v].is_some_and(|r| {
            inner(v, &inst.shape) && adds(r, &inst.shape) && chains[r.index()].is_some()
        });
        if absorbed {
            chains[v.index()] = None;
        }
    }
    chains
}

fn is_add(inst: &Inst) -> bool {
    inst.op == Op::Binary(Binary::Add)
}

/// The terms of the chain of additions ending at `v`, left to right,
/// through the additions `inner` accepts (a stack of its own: a chain may
/// be long).
fn collect(f: &Function, v: Value, inner: &dyn Fn(Value) -> bool, terms: &mut Vec<Value>) {
    let mut stack: Vec<Value> = f.inst(v).args.iter().rev().copied().collect();
    while let Some(a) = stack.pop() {
        if inner(a) {
            stack.extend(f.inst(a).args.iter().rev());
        } else {
            terms.push(a);
        }
    }
}

/// The chain of `terms` summed into shape `s`, if every term is a piece
/// along the same axis and their places are equal or apart.
fn chain(f: &Function, terms: &[Value], s: &Shape) -> Option<Chain> {
    let mut axis = None;
    let mut pieces = Vec::new();
    for &t in terms {
        let (k, place) = piece(f, t, s)?;
        if *axis.get_or_insert(k) != k {
            return None;
        }
        pieces.push((t, place));
    }
    let apart = |(a0, a1): (usize, usize), (b0, b1): (usize, usize)| a1 <= b0 || b1 <= a0;
    for (i, &(_, p)) in pieces.iter().enumerate() {
        if pieces[..i].iter().any(|&(_, q)| q != p && !apart(p, q)) {
            return None;
        }
    }
    Some(Chain {
        pieces,
        axis: axis?,
        shape: s.clone(),
    })
}

/// If `v` is an `unslice` into `s` whole on every axis but one: that axis
/// and the range it places there.
fn piece(f: &Function, v: Value, s: &Shape) -> Option<(usize, (usize, usize))> {
    let Op::Unslice(axes, to) = &f.inst(v).op else {
        return None;
    };
    if to != s || axes.len() != s.rank() {
        return None;
    }
    let mut placed = None;
    for (k, (ax, &n)) in axes.iter().zip(s.dims()).enumerate() {
        let range = match *ax {
            SliceAxis::Range(0, hi) if hi == n => continue,
            SliceAxis::Range(lo, hi) => (lo, hi),
            SliceAxis::At(i) => (i, i + 1),
        };
        if placed.replace((k, range)).is_some() {
            return None;
        }
    }
    placed
}

/// The sum `c` as its pieces placed side by side, in `out`; `map` takes a
/// value of the function being rewritten to its value in `out`.
fn placed(out: &mut Function, c: &Chain, map: &[Value], span: Span) -> Value {
    let (k, s) = (c.axis, &c.shape);
    let mut places: Vec<(usize, usize)> = c.pieces.iter().map(|&(_, p)| p).collect();
    places.sort_unstable();
    places.dedup();
    let mut parts = Vec::new();
    let mut at = places[0].0;
    for &(lo, hi) in &places {
        let mut dims = s.dims().to_vec();
        if lo > at {
            dims[k] = lo - at;
            parts.push(splat(out, 0.0, &Shape(dims.clone()), span));
        }
        dims[k] = hi - lo;
        let part = Shape(dims);
        let mut sum = None;
        for &(t, _) in c.pieces.iter().filter(|&&(_, p)| p == (lo, hi)) {
            let mut x = out.inst(map[t.index()]).args[0];
            if out.shape(x) != &part {
                x = out.push(Op::Reshape(part.clone()), vec![x], span);
            }
            sum = Some(match sum {
                None => x,
                Some(y) => out.push(Op::Binary(Binary::Add), vec![y, x], span),
            });
        }
        parts.push(sum.expect("every place has a piece"));
        at = hi;
    }
    let (lo, hi) = (places[0].0, at);
    let joined = concat_along(out, parts, k, span);
    if (lo, hi) == (0, s.dims()[k]) {
        return joined;
    }
    let axes = s
        .dims()
        .iter()
        .enumerate()
        .map(|(j, &n)| match j == k {
            true => SliceAxis::Range(lo, hi),
            false => SliceAxis::Range(0, n),
        })
        .collect();
    out.push(Op::Unslice(axes, s.clone()), vec![joined], span)
}

/// `parts` side by side along axis `k` (equal on every other axis): a
/// `concat` of the parts with `k` moved first, moved back.
fn concat_along(out: &mut Function, parts: Vec<Value>, k: usize, span: Span) -> Value {
    if k == 0 {
        return out.push(Op::Concat, parts, span);
    }
    let rank = out.shape(parts[0]).rank();
    let first: Vec<usize> = [k]
        .into_iter()
        .chain((0..rank).filter(|&j| j != k))
        .collect();
    let back: Vec<usize> = (0..rank)
        .map(|j| match j.cmp(&k) {
            std::cmp::Ordering::Less => j + 1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => j,
        })
        .collect();
    let moved = parts
        .into_iter()
        .map(|p| permuted(out, p, &first, span))
        .collect();
    let joined = out.push(Op::Concat, moved, span);
    permuted(out, joined, &back, span)
}

/// `x` permuted by `perm` (a `reshape` after [`super::algebra`] when the
/// axes longer than one keep their order).
fn permuted(out: &mut Function, x: Value, perm: &[usize], span: Span) -> Value {
    out.push(Op::Permute(perm.to_vec()), vec![x], span)
}

#[cfg(test)]
mod tests {
    use super::super::testing::parse;
    use crate::ir::interp::run_outputs;
    use crate::ir::verify::verify;
    use crate::ir::{Binary, Function, Op, SliceAxis, Value};
    use crate::shape::{Shape, Tensor};
    use crate::span::Span;

    /// Where a piece of `m` ([2, 3]) goes: its row `i`, its column `j`, or
    /// its columns `lo..hi`.
    #[derive(Clone, Copy)]
    enum At {
        Row(usize),
        Column(usize),
        Columns(usize, usize),
    }

    /// `m`'s part at `at` times that part of `m * m + k`, placed back at
    /// `at` of a [2, 3] of zeros: a different piece for each `k`.
    fn piece(f: &mut Function, at: At, k: f64) -> Value {
        let sp = Span::default();
        let m = f.value(0).unwrap();
        let axes = match at {
            At::Row(i) => vec![SliceAxis::At(i), SliceAxis::Range(0, 3)],
            At::Column(j) => vec![SliceAxis::Range(0, 2), SliceAxis::At(j)],
            At::Columns(lo, hi) => vec![SliceAxis::Range(0, 2), SliceAxis::Range(lo, hi)],
        };
        let sq = f.push(Op::Binary(Binary::Mul), vec![m, m], sp);
        let c = super::splat(f, k, &Shape::matrix(2, 3), sp);
        let shifted = f.push(Op::Binary(Binary::Add), vec![sq, c], sp);
        let a = f.push(Op::Slice(axes.clone()), vec![m], sp);
        let b = f.push(Op::Slice(axes.clone()), vec![shifted], sp);
        let x = f.push(Op::Binary(Binary::Mul), vec![a, b], sp);
        f.push(Op::Unslice(axes, Shape::matrix(2, 3)), vec![x], sp)
    }

    /// The pieces at `places` added left to right (and `m` last if
    /// `then_m`) as the output; the function before and after the
    /// simplifier.
    fn summed(places: &[At], then_m: bool) -> (Function, Function) {
        let sp = Span::default();
        let mut f = parse("m");
        let mut total = None;
        for (k, &at) in places.iter().enumerate() {
            let p = piece(&mut f, at, k as f64 + 0.5);
            total = Some(match total {
                None => p,
                Some(t) => f.push(Op::Binary(Binary::Add), vec![t, p], sp),
            });
        }
        let mut total = total.unwrap();
        if then_m {
            let m = f.value(0).unwrap();
            total = f.push(Op::Binary(Binary::Add), vec![total, m], sp);
        }
        f.outputs[0].value = total;
        let mut g = f.clone();
        super::super::simplify(&mut g);
        verify(&g).unwrap_or_else(|e| panic!("invalid IR: {e}\n{g}"));
        (f, g)
    }

    /// The output's bits before and after, at `m` holding numbers that
    /// round differently when added in another order.
    fn assert_same_bits(before: &Function, after: &Function) {
        let data = vec![0.1, -1e16, 3.3, 7e-5, 1.7, -2.9];
        let m = Tensor::new(Shape::matrix(2, 3), data);
        let a = run_outputs(before, std::slice::from_ref(&m), &[]).unwrap();
        let b = run_outputs(after, std::slice::from_ref(&m), &[]).unwrap();
        let bits = |t: &Tensor| t.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a[0].1), bits(&b[0].1), "{before}\n{after}");
    }

    fn count(f: &Function, what: impl Fn(&Op) -> bool) -> usize {
        f.insts().iter().filter(|i| what(&i.op)).count()
    }

    fn unslices(f: &Function) -> usize {
        count(f, |op| matches!(op, Op::Unslice(..)))
    }

    /// Additions of whole [2, 3] tensors, but the pieces' own (`m * m +
    /// k`, of a `broadcast`).
    fn whole_adds(f: &Function) -> usize {
        let adds = f.insts().iter().filter(|i| i.op == Op::Binary(Binary::Add));
        let own = |i: &crate::ir::Inst| matches!(f.inst(i.args[1]).op, Op::Broadcast(_));
        adds.filter(|i| i.shape == Shape::matrix(2, 3) && !own(i))
            .count()
    }

    /// A cross product's gradient: each column placed twice, in turn. The
    /// columns' pieces are added to each other, then set side by side:
    /// no `unslice`, no addition of whole tensors, one `concat`.
    #[test]
    fn columns_placed_twice_each_are_added_then_set_side_by_side() {
        let columns: Vec<At> = [0, 1, 2, 0, 1, 2].map(At::Column).to_vec();
        let (before, after) = summed(&columns, false);
        assert_eq!((unslices(&before), whole_adds(&before)), (6, 5));
        assert_eq!((unslices(&after), whole_adds(&after)), (0, 0));
        assert_eq!(count(&after, |op| *op == Op::Concat), 1);
        assert_same_bits(&before, &after);
    }

    /// Ranges of columns and single columns, in any order, covering the
    /// matrix or not (then one `unslice` of the columns covered, zeros
    /// between them).
    #[test]
    fn ranges_of_columns_apart_are_one_placement() {
        for (places, left) in [
            (vec![At::Column(2), At::Columns(0, 2)], 0),
            (vec![At::Columns(1, 3), At::Column(0), At::Columns(1, 3)], 0),
            (vec![At::Column(1), At::Column(0)], 1),
            (vec![At::Column(2), At::Column(0), At::Column(2)], 0),
            (vec![At::Columns(1, 2), At::Column(2)], 1),
        ] {
            let (before, after) = summed(&places, false);
            assert_eq!(unslices(&after), left, "{after}");
            assert_eq!(whole_adds(&after), 0, "{after}");
            assert_same_bits(&before, &after);
        }
    }

    /// Rows (the leading axis) placed more than once: the same.
    #[test]
    fn rows_placed_twice_are_added_then_joined() {
        let rows = [At::Row(1), At::Row(0), At::Row(1)];
        let (before, after) = summed(&rows, false);
        assert_eq!((unslices(&after), whole_adds(&after)), (0, 0), "{after}");
        assert_eq!(count(&after, |op| *op == Op::Concat), 1);
        assert_eq!(count(&after, |op| matches!(op, Op::Permute(_))), 0);
        assert_same_bits(&before, &after);
    }

    /// Places that overlap without being equal, or along two axes, stay
    /// as they are.
    #[test]
    fn overlapping_places_or_two_axes_are_left() {
        for places in [
            vec![At::Columns(0, 2), At::Column(1)],
            vec![At::Column(0), At::Row(1)],
        ] {
            let (before, after) = summed(&places, false);
            assert_eq!(unslices(&after), unslices(&before), "{after}");
            assert_eq!(whole_adds(&after), 1, "{after}");
        }
    }

    /// A chain that also adds a tensor of another kind: its pieces are
    /// placed, then that tensor added, as before (the same order).
    #[test]
    fn pieces_are_placed_before_another_term() {
        let columns: Vec<At> = [2, 0, 2, 1].map(At::Column).to_vec();
        let (before, after) = summed(&columns, true);
        assert_eq!((unslices(&after), whole_adds(&after)), (0, 1), "{after}");
        assert_same_bits(&before, &after);
    }
}
