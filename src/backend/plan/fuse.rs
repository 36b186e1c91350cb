//! The fusion schedule: which instructions run as one loop, and which
//! slices are views. (The translator's side is `translate::fuse`.)
//!
//! - A *run* is a sequence of consecutive elementwise instructions (unary,
//!   binary, `select`, `broadcast`) of one size, each reading the others
//!   element by element, possibly followed by `sum`s of its members. It is
//!   translated as one loop: every element of every member is computed in
//!   turn, in registers; only the members read outside the run are stored
//!   (the others, *internal*, have no scratch slot), and a `sum` adds the
//!   elements as they come, in the same order as a separate loop would.
//!   A run may also hold `broadcast_axes` of tensors to its first
//!   member's shape (a *spread*: `Qs @ x.T - Qs @ mu`'s second term
//!   repeated along the points), and `sum_axes` of its members of that
//!   shape along axes other than the last, and their maxima so
//!   ([`by_rows`]); it is then a loop
//!   nest over that shape, a spread's elements are read from its argument
//!   in place, and such a sum adds each row into its result's row. Or it
//!   may hold one `concat` of tensors computed before it ([`pieces`]): its
//!   loop then goes over the parts in turn. And it may hold a member
//!   shifted by one element, `concat([a], m[0:n - 1])` of a member `m`
//!   ([`lag`]): each element is `m`'s element before it, kept from there
//!   (the loop goes over the elements in order), so that a chain of
//!   shifts (`ode`'s four Runge-Kutta stages) is one loop, not one a
//!   stage. Or, with no sums, a member shifted the other way, the adjoint
//!   of a lag (`unslice(m[1:n])` into `[0:n - 1]`, [`lead`]): the loop then
//!   goes over the elements from the last, each the element of `m` after
//!   it.
//! - A matrix product whose only readers are in one later run over its
//!   shape, a nest that adds nothing up in order (no `sum`; sums and
//!   maxima along its rows are element by element), joins that run as its
//!   first member ([`super::products`]): the run then goes over blocks of
//!   columns, each block of the product computed by the kernel into a
//!   buffer that stays in the cache and read from there (`kmeans`' K x N
//!   distances, never written out whole).
//! - A copy of a forward value made for the backward pass ([`copies`],
//!   [`super::recompute`]) joins no run of the forward pass: it is
//!   computed in the backward run that reads it, and stored by neither.
//! - A `slice` that selects a contiguous block, a `reshape` of a tensor
//!   and a row `x[i]` are *views* ([`super::views`]): the value is its
//!   argument's memory from an offset (the row's computed when it runs),
//!   with no copy, and a step of its own.
//!
//! - A `softmax` and a `log_softmax` of the same value along the same axis
//!   (the forward and the backward pass of a cross-entropy) are one step of
//!   two instructions, a *pair*: per slice, the exponentials are computed
//!   once for both.
//!
//! Each element goes through the same operations as without fusion, so the
//! results are the same bits.

use std::collections::HashSet;

use super::can_fail_at;
use super::views::{contiguous, view_offset};
use crate::ir::{Binary, Function, Op, Reduce, Unary, Value, ValueMap};
use crate::shape::Shape;

/// An operation that computes each element of its result from the same
/// element of each argument (a scalar argument standing for every element).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ElementOp {
    Unary(Unary),
    Binary(Binary),
    /// `select(c, a, b)`: `a` where `c != 0`, else `b`.
    Select,
    /// `broadcast` of a scalar: the scalar in every element.
    Broadcast,
}

impl ElementOp {
    /// The elementwise operation `op` is, if it is one. Every operation is
    /// listed, so that a new one is classified here, once, for the planner
    /// and the translator alike.
    pub fn of(op: &Op) -> Option<ElementOp> {
        match op {
            Op::Unary(u) => Some(ElementOp::Unary(*u)),
            Op::Binary(b) => Some(ElementOp::Binary(*b)),
            Op::Select => Some(ElementOp::Select),
            Op::Broadcast(_) => Some(ElementOp::Broadcast),
            Op::Param(_)
            | Op::Input(_)
            | Op::Const(_)
            | Op::MatMul
            | Op::Outer
            | Op::Transpose
            | Op::Sum
            | Op::ReduceMax
            | Op::Norm
            | Op::LogSumExp
            | Op::ReduceAxes(..)
            | Op::BroadcastAxes(..)
            | Op::Softmax(_)
            | Op::LogSoftmax(_)
            | Op::ArgMax(_)
            | Op::Window(_)
            | Op::Slice(_)
            | Op::Unslice(..)
            | Op::Pack
            | Op::OneHot(_)
            | Op::Index
            | Op::IndexAdd
            | Op::IndexSet
            | Op::Gather
            | Op::ScatterAdd
            | Op::Reshape(_)
            | Op::Permute(_)
            | Op::Concat
            | Op::Loop(_) => None,
        }
    }
}

/// What an instruction of a run is: [`steps`] makes runs of these only.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Member {
    /// An elementwise instruction, computed element by element.
    Map(ElementOp),
    /// A `broadcast_axes` of a tensor to the run's shape: each element read
    /// from the argument's element it repeats.
    Spread,
    /// A `concat` of tensors computed before the run: each element read
    /// from the part it lies in (see [`pieces`]).
    Pieces,
    /// A `concat([a], m[0:n - 1])` of a member `m` of the run: each
    /// element `m`'s element before it, the first `a` (see [`lag`]).
    Lag,
    /// An `unslice(m[1:n])` into `[0:n - 1]` of a member `m` of the run:
    /// each element `m`'s element after it, the last 0 (see [`lead`]).
    Lead,
    /// A matrix product, the first member of a run over its shape: computed
    /// a block of columns at a time, each element read from the block
    /// (see [`super::products`]).
    Product,
    /// The slice `m[0:n - 1]` or `m[1:n]` that a [`Member::Lag`] or a
    /// [`Member::Lead`] shifts, read by nothing else: it computes nothing,
    /// so that `m` need not be stored.
    ShiftSlice,
    /// A `sum` of a member, added to element by element.
    Sum,
    /// A `sum_axes` or `max_axes` of a member along axes that leave its
    /// last, added to (or its maximum taken) element by element in memory,
    /// a row at a time (see [`by_rows`]).
    Rows(Reduce),
}

impl Member {
    /// What instruction `op` would be in a run, if it can be in one: an
    /// [`ElementOp`], a `broadcast_axes`, a `concat`, a `sum`, or a
    /// `sum_axes` or `max_axes` (every other operation is not a member,
    /// which is what a new one is until [`ElementOp::of`] says otherwise;
    /// [`place`] decides whether one of these joins a given run).
    pub fn of(op: &Op) -> Option<Member> {
        match op {
            Op::Sum => Some(Member::Sum),
            Op::BroadcastAxes(..) => Some(Member::Spread),
            Op::Concat => Some(Member::Pieces),
            Op::ReduceAxes(kind @ (Reduce::Sum | Reduce::Max), _) => Some(Member::Rows(*kind)),
            _ => ElementOp::of(op).map(Member::Map),
        }
    }

    /// What `v` is in a run whose members `in_run` tells: as [`Member::of`],
    /// but a `concat` that shifts a member or a tensor read from memory by
    /// one ([`lag`]), or an `unslice` that shifts a member ([`lead`]), is a
    /// [`Member::Lag`] or a [`Member::Lead`], the slice
    /// it shifts a [`Member::ShiftSlice`], and a product's reshape that
    /// keeps its rows the product itself ([`super::products::reshaped_product`]).
    pub fn in_run(f: &Function, v: Value, in_run: impl Fn(Value) -> bool) -> Option<Member> {
        let inst = f.inst(v);
        if matches!(inst.op, Op::Slice(_)) && in_run(inst.args[0]) {
            return Some(Member::ShiftSlice);
        }
        if lead(f, v).is_some_and(&in_run) {
            return Some(Member::Lead);
        }
        if inst.op == Op::MatMul || super::products::reshaped_product(f, v, &in_run) {
            return Some(Member::Product);
        }
        match Member::of(&inst.op)? {
            // `m` in the run, or read from memory: each element of `m` read
            // once, at its place, and kept for the next.
            Member::Pieces if lag(f, v).is_some() => Some(Member::Lag),
            m => Some(m),
        }
    }
}

/// Whether `v` computes each element of its (non-scalar) result from the
/// same element of each non-scalar argument.
pub fn elementwise(f: &Function, v: Value) -> bool {
    let inst = f.inst(v);
    ElementOp::of(&inst.op).is_some() && !inst.shape.is_scalar()
}

/// Whether `v` is a `broadcast_axes` of a tensor (not of a scalar, which
/// is the `broadcast` a run computes flat).
pub fn spread(f: &Function, v: Value) -> bool {
    let inst = f.inst(v);
    matches!(inst.op, Op::BroadcastAxes(..))
        && !inst.shape.is_scalar()
        && !f.shape(inst.args[0]).is_scalar()
}

/// Whether `v` is a `sum_axes` or a `max_axes` along axes that leave its
/// argument's last (the rows of `[K, D, N]` summed over `D`, `kmeans`'
/// nearest of the `[K, N]` distances): a run adds each row of the argument
/// into the result's row (or takes their maximum) as it computes it, each
/// element of the result from -0 (or -inf) in the order of the reduced
/// axes, as alone.
pub fn by_rows(f: &Function, v: Value) -> bool {
    let inst = f.inst(v);
    let Op::ReduceAxes(Reduce::Sum | Reduce::Max, axes) = &inst.op else {
        return false;
    };
    let rank = f.shape(inst.args[0]).rank();
    !axes.is_empty() && rank >= 2 && !axes.contains(&(rank - 1))
}

/// Whether `v` is a `concat` (along the leading axis, so that each part is
/// a block of consecutive elements of the result): in a run, the loop
/// goes over the parts in turn, each element read from its part in place,
/// so the `concat` is never written out (`ode`'s `concat([1], y[0:N -
/// 1])`, `y` shifted by one).
pub fn pieces(f: &Function, v: Value) -> bool {
    let inst = f.inst(v);
    inst.op == Op::Concat && !inst.shape.is_scalar()
}

/// If `v` is `concat([a], m[0:n - 1])`, `m` shifted by one element with
/// `a` first (`a` of one element, `m` of `n`, the `concat`'s): `a` and `m`.
/// In a run that computes `m`, each element of `v` but the first is the
/// element of `m` computed just before, so it is kept from there, not
/// read back from memory.
pub fn lag(f: &Function, v: Value) -> Option<(Value, Value)> {
    let inst = f.inst(v);
    let &[a, s] = inst.args.as_slice() else {
        return None;
    };
    let n = inst.shape.size();
    let m = *f.inst(s).args.first()?;
    let shifted = matches!(f.inst(s).op, Op::Slice(_))
        && view_offset(f, s) == Some(0)
        && f.shape(s).size() + 1 == n
        && f.shape(m).size() == n;
    (pieces(f, v) && f.shape(a).size() == 1 && shifted).then_some((a, m))
}

/// If `v` is `unslice(m[1:n])` into `[0:n - 1]`, `m` shifted back by one
/// element with 0 last (`m` of `n` elements, `v`'s; the adjoint of a
/// [`lag`]): `m`. In a run that computes `m` from its last element to its
/// first, each element of `v` but the last is the element of `m` computed
/// just before.
pub fn lead(f: &Function, v: Value) -> Option<Value> {
    let inst = f.inst(v);
    let Op::Unslice(axes, into) = &inst.op else {
        return None;
    };
    let n = inst.shape.size();
    let s = inst.args[0];
    let m = *f.inst(s).args.first()?;
    let shifted = matches!(f.inst(s).op, Op::Slice(_))
        && view_offset(f, s) == Some(1)
        && f.shape(s).size() + 1 == n
        && f.shape(m).size() == n;
    (!inst.shape.is_scalar() && contiguous(into, axes) == Some(0) && shifted).then_some(m)
}

/// The slice of `m` a [`lag`] or [`lead`] `c` shifts.
fn shift_slice(f: &Function, c: Value) -> Value {
    let inst = f.inst(c);
    *inst.args.last().expect("a shift has arguments")
}

/// Whether `v` is a member a run computes element by element: elementwise,
/// a [`spread`], or a `concat` ([`pieces`]).
pub fn per_element(f: &Function, v: Value) -> bool {
    elementwise(f, v) || spread(f, v) || pieces(f, v)
}

/// How a run's loop goes: over its elements, over the rows of a nest (with
/// spreads or reductions of rows), over the parts of its one `concat`,
/// over its elements in order with members shifted ([`lag`]) kept from one
/// element to the next, or over its elements from the last, with members
/// shifted the other way ([`lead`]). A run that sums asks for an order.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Form {
    Flat,
    Summed,
    Nest,
    Parts,
    Shifted,
    Reversed,
}

impl Form {
    /// The form a member asks for.
    fn of(m: Option<Member>) -> Form {
        match m {
            Some(Member::Spread | Member::Rows(_) | Member::Product) => Form::Nest,
            Some(Member::Pieces) => Form::Parts,
            Some(Member::Lag) => Form::Shifted,
            Some(Member::Lead) => Form::Reversed,
            Some(Member::Sum) => Form::Summed,
            _ => Form::Flat,
        }
    }

    /// The form of a run of this form with a member asking for `other`, if
    /// they go together: one `concat` of parts a run, and neither parts
    /// nor shifts in a nest (whose rows may go in any order); a run from
    /// the last element has nothing else (sums and the other forms go in
    /// order). The parts' loop goes over the elements in order, so it
    /// keeps shifts too. (Every form but [`Form::Flat`] and
    /// [`Form::Summed`] keeps the order, so it may forget a sum.)
    fn with(self, other: Form) -> Option<Form> {
        match (self, other) {
            (Form::Reversed, Form::Flat | Form::Reversed) => Some(Form::Reversed),
            (Form::Flat, Form::Reversed) => Some(Form::Reversed),
            (Form::Reversed, _) | (_, Form::Reversed) => None,
            (Form::Parts, Form::Parts)
            | (Form::Parts | Form::Shifted, Form::Nest)
            | (Form::Nest, Form::Parts | Form::Shifted) => None,
            (Form::Flat | Form::Summed, x) | (x, Form::Flat | Form::Summed) => Some(x),
            (Form::Parts, Form::Shifted) | (Form::Shifted, Form::Parts) => Some(Form::Parts),
            (x, _) => Some(x),
        }
    }
}

/// A `softmax` and a `log_softmax` of the same value along the same axis.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SoftmaxPair {
    pub softmax: Value,
    pub log_softmax: Value,
    /// Their argument.
    pub x: Value,
    pub axis: usize,
}

/// The pair `a` and `b` are, if they are a `softmax` and a `log_softmax`
/// (in either order) of the same value along the same axis, with a result
/// that is not a scalar. Each computes `m = max(x)` and `e = exp(x - m)`
/// of each slice and their sum from -0 in the same order, so a pair
/// computes them once.
pub fn softmax_pair(f: &Function, a: Value, b: Value) -> Option<SoftmaxPair> {
    let (ia, ib) = (f.inst(a), f.inst(b));
    if ia.args != ib.args || ia.shape.is_scalar() {
        return None;
    }
    let pair = |softmax, log_softmax, axis| SoftmaxPair {
        softmax,
        log_softmax,
        x: ia.args[0],
        axis,
    };
    match (&ia.op, &ib.op) {
        (Op::Softmax(x), Op::LogSoftmax(y)) if x == y => Some(pair(a, b, *x)),
        (Op::LogSoftmax(x), Op::Softmax(y)) if x == y => Some(pair(b, a, *x)),
        _ => None,
    }
}

/// The most columns of a [`transposed_concat`]: each row of the result is
/// written by code unrolled over its columns.
pub const TRANSPOSED_COLUMNS: usize = 64;

/// Whether `b` is the transpose of the `concat` `a` of matrices, with at
/// most [`TRANSPOSED_COLUMNS`] columns: the parts side by side along the
/// columns (`ba`'s Jacobian, 31 columns of [P] each). When `b` is the
/// only reader of `a`, the two are one step ([`steps`]) that writes each
/// part's columns straight into the result: the `concat` is never
/// written out.
pub fn transposed_concat(f: &Function, a: Value, b: Value) -> bool {
    let (ia, ib) = (f.inst(a), f.inst(b));
    ia.op == Op::Concat
        && ia.shape.rank() == 2
        && ib.op == Op::Permute(vec![1, 0])
        && ib.args == [a]
        && ib.shape.dims()[1] <= TRANSPOSED_COLUMNS
}

/// How far past a run's first instruction [`steps`] looks for members.
const WINDOW: usize = 256;

/// What [`steps`] has decided about an instruction while it grows a run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    /// Not looked at yet.
    Open,
    /// In an earlier step, or outside the region.
    Done,
    /// Goes just before the run: it reads nothing from it.
    Hoisted,
    InRun,
    /// Goes after the run, in its original place among the others.
    Deferred,
}

/// Splits `region`, instructions in execution order, into steps: a run of
/// two or more instructions (see the module documentation), or one
/// instruction, in an order that respects every dependency.
///
/// From the first instruction not yet placed, if it is elementwise, a run
/// grows over the next `WINDOW` instructions: each joins it if it can
/// (elementwise of the same size, a spread of its shape or a `concat` of
/// its size, or a `sum` of a member, reading only members and values ready
/// before the run; one `concat` a run, not beside spreads); else it is
/// hoisted before the run or deferred ([`hoisted_or_deferred`]). What is
/// not placed is looked at again, in order, after the run.
///
/// A `softmax` or `log_softmax` takes its partner (see [`softmax_pair`])
/// from the next `WINDOW` instructions into its step: the partner reads
/// only their common argument, so it can move up.
pub fn steps(f: &Function, region: &[Value]) -> Vec<Vec<Value>> {
    let readers = readers(f);
    let copies = copies(f);
    // A value only loops carry, which they make in place, writes nothing
    // as a step of its own (`translate::body`); in a run it would be
    // stored.
    let alone = super::only_carried(f);
    let mut state = ValueMap::new(f, State::Done);
    for &v in region {
        state[v] = State::Open;
    }
    let mut steps = Vec::new();
    for (pos, &head) in region.iter().enumerate() {
        if state[head] != State::Open {
            continue;
        }
        state[head] = State::Done;
        let window = &region[pos + 1..region.len().min(pos + 1 + WINDOW)];
        if f.inst(head).op == Op::Concat {
            let open = |v: Value| state[v] == State::Open;
            let transpose = window
                .iter()
                .copied()
                .find(|&v| open(v) && readers[head] == 1 && transposed_concat(f, head, v));
            if let Some(t) = transpose {
                state[t] = State::Done;
                steps.push(vec![head, t]);
                continue;
            }
        }
        if !per_element(f, head) || alone[head] {
            let partner = window
                .iter()
                .copied()
                .find(|&v| state[v] == State::Open && softmax_pair(f, head, v).is_some());
            if let Some(p) = partner {
                state[p] = State::Done;
                steps.push(vec![head, p]);
            } else {
                steps.push(vec![head]);
            }
            continue;
        }
        grow_run(
            f,
            head,
            window,
            (&readers, &copies, &alone),
            &mut state,
            &mut steps,
        );
    }
    super::products::join_products(f, &mut steps, &readers);
    super::products::join_row_sums(f, &mut steps);
    steps
}

/// The values of `f` that are copies of forward values made for the
/// backward pass ([`super::recompute`]): of the backward pass, computed
/// element by element, with the operation and the arguments of a value of
/// the forward pass (which the simplifier's common subexpressions leave
/// only there). A run of the forward pass leaves them out.
pub fn copies(f: &Function) -> ValueMap<bool> {
    let mut forward = HashSet::new();
    let mut copies = ValueMap::new(f, false);
    for (v, inst) in f.iter() {
        if !per_element(f, v) {
            continue;
        }
        let key = (&inst.op, &inst.args);
        match inst.backward {
            None => {
                forward.insert(key);
            }
            Some(_) => copies[v] = forward.contains(&key),
        }
    }
    copies
}

/// How many times each value is read: as an argument, or as an output.
fn readers(f: &Function) -> ValueMap<usize> {
    let mut readers = ValueMap::new(f, 0);
    for (_, inst) in f.iter() {
        for &a in &inst.args {
            readers[a] += 1;
        }
    }
    for o in &f.outputs {
        readers[o.value] += 1;
    }
    readers
}

/// Grows a run from `head` (ready: everything before it is placed) over
/// `window`, then appends the steps of the hoisted instructions and the
/// run's; the deferred ones are open again. `readers` counts each value's
/// readers, `copies` marks the [`copies`].
fn grow_run(
    f: &Function,
    head: Value,
    window: &[Value],
    (readers, copies, alone): (&ValueMap<usize>, &ValueMap<bool>, &ValueMap<bool>),
    state: &mut ValueMap<State>,
    steps: &mut Vec<Vec<Value>>,
) {
    state[head] = State::InRun;
    let mut run = vec![head];
    let mut hoisted = Vec::new();
    let mut looked = Vec::new();
    let shape = f.shape(head);
    let mut form = Form::of(Member::of(&f.inst(head).op));
    for &v in window {
        if state[v] != State::Open {
            continue;
        }
        state[v] = place(f, state, v, shape, readers);
        // A copy of a forward value joins a run of the backward pass
        // only: in a forward run it would be stored for its readers.
        if state[v] == State::InRun && copies[v] && f.inst(head).backward.is_none() {
            state[v] = hoisted_or_deferred(f, state, v);
        }
        if state[v] == State::InRun && alone[v] {
            state[v] = hoisted_or_deferred(f, state, v);
        }
        if state[v] == State::InRun {
            let member = Member::in_run(f, v, |m| state[m] == State::InRun);
            match form.with(Form::of(member)) {
                Some(joined) => form = joined,
                None => state[v] = hoisted_or_deferred(f, state, v),
            }
        }
        match state[v] {
            State::InRun => run.push(v),
            State::Hoisted => hoisted.push(v),
            State::Deferred | State::Open | State::Done => looked.push(v),
        }
    }
    // A slice whose shift did not join after all is a view after the run.
    let shifted: Vec<Value> = run
        .iter()
        .filter(|&&c| {
            let member = Member::in_run(f, c, |m| state[m] == State::InRun);
            matches!(member, Some(Member::Lag | Member::Lead))
        })
        .map(|&c| shift_slice(f, c))
        .collect();
    run.retain(|&v| {
        let alone = matches!(f.inst(v).op, Op::Slice(_)) && !shifted.contains(&v);
        if alone {
            state[v] = State::Deferred;
            looked.push(v);
        }
        !alone
    });
    for v in hoisted {
        state[v] = State::Done;
        steps.push(vec![v]);
    }
    for &v in &run {
        state[v] = State::Done;
    }
    steps.push(run);
    for v in looked {
        state[v] = State::Open;
    }
}

/// Where `v` goes while a run of the shape of its head grows: into the
/// run ([`State::InRun`]), before it ([`State::Hoisted`]), or after it
/// ([`State::Deferred`]). Elementwise members need the run's number of
/// elements; a [`spread`] needs its shape, whose last axis the run's loop
/// goes along.
fn place(
    f: &Function,
    state: &ValueMap<State>,
    v: Value,
    shape: &Shape,
    readers: &ValueMap<usize>,
) -> State {
    let inst = f.inst(v);
    let ready = |s: State| matches!(s, State::Done | State::Hoisted);
    let member = |a: Value| state[a] == State::InRun && (per_element(f, a) || lead(f, a).is_some());
    let joins = match Member::of(&inst.op) {
        Some(Member::Sum) => member(inst.args[0]),
        Some(Member::Rows(_)) => {
            by_rows(f, v) && member(inst.args[0]) && f.shape(inst.args[0]) == shape
        }
        Some(Member::Spread) => spread(f, v) && inst.shape == *shape && ready(state[inst.args[0]]),
        Some(Member::Pieces | Member::Lag) => {
            let shifts = |(a, m)| ready(state[a]) && member(m);
            pieces(f, v)
                && inst.shape.size() == shape.size()
                && (inst.args.iter().all(|&a| ready(state[a])) || lag(f, v).is_some_and(shifts))
        }
        // The slice a shift may read, if nothing else reads it (see the end
        // of [`grow_run`]).
        None if matches!(inst.op, Op::Slice(_)) => {
            let m = inst.args[0];
            readers[v] == 1
                && member(m)
                && matches!(view_offset(f, v), Some(0 | 1))
                && inst.shape.size() + 1 == shape.size()
                && f.shape(m).size() == shape.size()
        }
        None if matches!(inst.op, Op::Unslice(..)) => {
            inst.shape.size() == shape.size() && lead(f, v).is_some_and(member)
        }
        Some(Member::Map(_) | Member::Lead | Member::ShiftSlice | Member::Product) | None => {
            elementwise(f, v)
                && inst.shape.size() == shape.size()
                && inst.args.iter().all(|&a| member(a) || ready(state[a]))
        }
    };
    if joins {
        State::InRun
    } else {
        hoisted_or_deferred(f, state, v)
    }
}

/// Where `v`, not in the run, goes: before it if it reads nothing from the
/// run or from what was deferred, and is neither elementwise nor a spread
/// (so that it can start a run of its own later: `kmeans`' distances, a
/// spread of the centroids' norms first) nor one that [`can_fail_at`] (so
/// that failures keep their order); else after it. A `concat` is hoisted:
/// one of another size is most often a gradient's pieces, placed before
/// the run that adds them.
fn hoisted_or_deferred(f: &Function, state: &ValueMap<State>, v: Value) -> State {
    let ready = |s: State| matches!(s, State::Done | State::Hoisted);
    let inst = f.inst(v);
    let starts_runs = elementwise(f, v) || spread(f, v);
    if !starts_runs && !can_fail_at(f, v) && inst.args.iter().all(|&a| ready(state[a])) {
        State::Hoisted
    } else {
        State::Deferred
    }
}
