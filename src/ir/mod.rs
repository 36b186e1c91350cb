//! The SSA IR: a straight-line function of tensor-valued instructions with
//! static shapes.
//!
//! Instructions live in an arena (`Function::insts()`) and are named by their
//! index, a [`Value`], which only the function hands out. Every argument of an instruction is an earlier value, so
//! the arena order is a topological order: there are no blocks and no phis,
//! `if` is the [`Op::Select`] instruction. A loop is one instruction,
//! [`Op::Loop`], whose body is a function of its own (see [`Loop`]): the
//! structure nests, and every function in it is straight-line. The
//! printer's text is the canonical form that snapshot tests compare.

pub mod axes;
pub mod broadcast;
mod elementwise;
pub mod fault;
pub mod interp;
pub mod math;
pub mod matmul;
pub mod nonfinite;
pub mod printer;
pub mod stats;
pub mod verify;
pub mod window;

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::shape::{Shape, Tensor};
use crate::span::Span;

pub use elementwise::{Binary, Reduce, Unary};
pub use fault::{Fault, RunError};
pub use window::Window;

/// An SSA value: the index of the instruction that defines it.
///
/// The index is private: a `Value` comes only from the [`Function`] that
/// defines it ([`Function::push`], [`Function::values`], [`Function::value`]),
/// so it always names an instruction of that function. [`Value::index`] reads
/// it back, for side tables indexed by value.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(u32);

impl Value {
    /// The position of the defining instruction in [`Function::insts`].
    pub fn index(self) -> usize {
        self.0 as usize
    }

    fn at(index: usize) -> Value {
        Value(u32::try_from(index).expect("fewer than 2^32 instructions"))
    }
}

/// A side table with one entry per value of a function, indexed by
/// [`Value`] (as Cranelift's `SecondaryMap`): liveness, adjoints, locations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueMap<T>(Vec<T>);

impl<T: Clone> ValueMap<T> {
    /// One `fill` per value of `f`.
    pub fn new(f: &Function, fill: T) -> ValueMap<T> {
        ValueMap(vec![fill; f.len()])
    }
}

impl<T> ValueMap<T> {
    /// The entry `entry(v)` for every value `v` of `f`, made in value order.
    pub fn from_fn(f: &Function, entry: impl FnMut(Value) -> T) -> ValueMap<T> {
        ValueMap(f.values().map(entry).collect())
    }

    /// The entries in value order.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// The entry of `v`, or `None` for a value added to the function after
    /// the table was made.
    pub fn get(&self, v: Value) -> Option<&T> {
        self.0.get(v.index())
    }
}

impl<T> std::ops::Index<Value> for ValueMap<T> {
    type Output = T;
    fn index(&self, v: Value) -> &T {
        &self.0[v.index()]
    }
}

impl<T> std::ops::IndexMut<Value> for ValueMap<T> {
    fn index_mut(&mut self, v: Value) -> &mut T {
        &mut self.0[v.index()]
    }
}

/// How one axis of a tensor is selected by [`Op::Slice`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SliceAxis {
    /// One position; the axis is removed.
    At(usize),
    /// The half-open range `lo..hi`; the axis stays, with length `hi - lo`.
    Range(usize, usize),
}

/// Constant data, compared and hashed by bit pattern so that CSE can key on it.
#[derive(Clone, Debug)]
pub struct ConstData(pub Tensor);

impl PartialEq for ConstData {
    fn eq(&self, other: &Self) -> bool {
        self.0.shape == other.0.shape
            && self.0.data.len() == other.0.data.len()
            && self
                .0
                .data
                .iter()
                .zip(&other.0.data)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

impl Eq for ConstData {}

/// The shape and at most 65 of the numbers, spread over the tensor: equal
/// constants hash equal, and a large one (a table computed when its
/// function is compiled, tens of thousands of numbers) is not read whole
/// by every hash of every pass; constants that hash equal are compared
/// whole.
impl Hash for ConstData {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.shape.hash(state);
        let data = &self.0.data;
        for x in data.iter().step_by(data.len().div_ceil(64).max(1)) {
            x.to_bits().hash(state);
        }
        if let Some(x) = data.last() {
            x.to_bits().hash(state);
        }
    }
}

/// One operation. Every pass, the printer, the interpreter, the autodiff and
/// the backend match on this exhaustively.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// The i-th parameter (no arguments).
    Param(usize),
    /// The i-th input of one example (no arguments).
    Input(usize),
    /// A constant tensor (no arguments).
    Const(ConstData),
    Unary(Unary),
    /// Two arguments of equal shape, or one of them a scalar.
    Binary(Binary),
    /// `(c, a, b)`: elementwise `if c != 0 then a else b`; scalars broadcast.
    Select,
    /// `[m,k]@[k,n] -> [m,n]`, `[m,k]@[k] -> [m]`, `[k]@[k,n] -> [n]`, `[k]@[k] -> []`.
    MatMul,
    /// `[m] x [n] -> [m, n]`.
    Outer,
    /// `[m, n] -> [n, m]`.
    Transpose,
    /// Sum of all elements, to a scalar.
    Sum,
    /// Largest element, to a scalar.
    ReduceMax,
    /// Euclidean norm of all elements, to a scalar.
    Norm,
    /// log(sum(exp(x))) over all elements with the maximum shifted out.
    LogSumExp,
    /// Along the listed axes (increasing, each once), which the result
    /// drops: each element of the result reduces the slice of the argument
    /// at its indices on the other axes, that slice's elements in row-major
    /// order, with the arithmetic of the whole-tensor reduction (a sum from
    /// -0, left to right). `ReduceAxes(Sum, [0, 1])` of a matrix gives the
    /// bits of `Sum`.
    ReduceAxes(Reduce, Vec<usize>),
    /// The adjoint of a sum along axes: its argument (`shape` without the
    /// listed axes) repeated along the listed axes of `shape`.
    BroadcastAxes(Vec<usize>, Shape),
    /// Along one axis: each slice along it is a softmax.
    Softmax(usize),
    /// Along one axis: each slice along it is x - logsumexp(x).
    LogSoftmax(usize),
    /// The index along the axis of the first largest element of each slice
    /// (a NaN counts as the largest: the first NaN's index), which drops
    /// the axis; integer-valued, no gradient.
    ArgMax(usize),
    /// A scalar repeated to the given shape.
    Broadcast(Shape),
    /// Selects one position or a range on every axis of its argument.
    Slice(Vec<SliceAxis>),
    /// The adjoint of `Slice`: places its argument into zeros of `shape` at
    /// the positions the same `Slice` would read.
    Unslice(Vec<SliceAxis>, Shape),
    /// k arguments of one shape `s`, stacked to `[k, s...]`.
    Pack,
    /// A scalar class index c to the vector `[c == 0, c == 1, ..., c == n-1]`.
    OneHot(usize),
    /// `(x, i)`: `x[i]`, the row `i` of `x` along its leading axis (`[n,
    /// s...] -> [s...]`), for an index `i` computed at run time (a scalar that
    /// must be an integer in `0..n`, else a fault).
    Index,
    /// `(acc, g, i)`: `acc` with `g` added to its row `i` (the adjoint of
    /// [`Op::Index`], a scatter-add); `i` as for `Index`.
    IndexAdd,
    /// `(x, v, i)`: `x` with its row `i` replaced by `v` (`[n, s...]` and
    /// `[s...]`): the rows of a comprehension `[if r == i then v else x[r]
    /// for r in 0..n]`, one row's work; `i` as for `Index`.
    IndexSet,
    /// `(x, i)`: `x[i]` for a tensor of indices `i` of any shape (`[n,
    /// s...]` by `[q...]` -> `[q..., s...]`): at position `p` of `i` (in
    /// row-major order), the row `i[p]` of `x` along its leading axis. Each
    /// index must be an integer in `0..n`, else a fault (the first bad one
    /// in row-major order).
    Gather,
    /// `(acc, g, i)`: `acc` (`[n, s...]`) with each row `g[p]` of `g`
    /// (`[q..., s...]`, `i` of shape `[q...]`) added to its row `i[p]`, one
    /// position `p` after the other in row-major order (so that duplicate
    /// indices add in that order in every engine): the adjoint of
    /// [`Op::Gather`]; `i` as for `Gather`.
    ScatterAdd,
    /// The same elements in row-major order, in another shape of the same
    /// size.
    Reshape(Shape),
    /// The axes reordered as `numpy.transpose(x, perm)`: axis `i` of the
    /// result is axis `perm[i]` of the argument.
    Permute(Vec<usize>),
    /// One or more tensors of equal shapes but for the first axis, joined
    /// along it: `[a0, s...], [a1, s...] -> [a0 + a1, s...]`.
    Concat,
    /// A sliding-window operation on `[C, H, W]` images: convolution,
    /// pooling and their adjoints; see [`Window`].
    Window(Window),
    /// A counted loop with a body of its own; see [`Loop`]. The arguments are
    /// the carried values' initial values, then the captured values.
    Loop(Box<Loop>),
}

/// A counted loop: `body` runs `trips` times, each time on the carried values
/// of the step before (`args[..carries]` the first time), the captured values
/// (`args[carries..]`, the same every time) and the step number `t` in
/// `0..trips`, its only input. The body returns the new carried values, then
/// the values of the step that are stacked.
///
/// The loop's value is its results packed into one vector, in order: the
/// carried values after the last step, then each stacked value with a
/// leading axis of `trips`. They are read out with a `slice` and a
/// `reshape` (see [`Loop::parts`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Loop {
    pub trips: usize,
    pub carries: usize,
    /// Parameters: the carried values, then the captured ones; one scalar
    /// input, the step; outputs: the new carried values, then the stacked
    /// ones.
    pub body: Function,
    /// The gradient's reverse of this loop recomputes each step from the
    /// carried values it started with (the only values the loop saves),
    /// rather than saving what the step's derivative reads: a loop over the
    /// segments of a checkpointed loop (see `autodiff::checkpoint`).
    pub recompute: bool,
}

impl Loop {
    /// The shapes of the results in the order they are packed.
    pub fn parts(&self) -> Vec<Shape> {
        let b = &self.body;
        b.outputs
            .iter()
            .enumerate()
            .map(|(k, o)| {
                let s = b.shape(o.value);
                if k < self.carries {
                    s.clone()
                } else {
                    let mut dims = vec![self.trips];
                    dims.extend_from_slice(s.dims());
                    Shape(dims)
                }
            })
            .collect()
    }

    /// How many numbers the loop keeps for its reverse: its stacked values
    /// that are saved states (see [`Loop::STATE`]).
    pub fn saved(&self) -> usize {
        let parts = self.parts();
        self.body
            .outputs
            .iter()
            .zip(&parts)
            .skip(self.carries)
            .filter(|(o, _)| o.name.starts_with(Loop::STATE))
            .map(|(_, s)| s.size())
            .sum()
    }

    /// The name of a body's output that is a saved state: the carried
    /// value a step starts with, kept for the reverse loop of the
    /// gradient.
    pub const STATE: &'static str = "state ";

    /// The offset of each part in the packed vector, and its total length.
    pub fn offsets(&self) -> (Vec<usize>, usize) {
        let mut at = 0;
        let offsets = self
            .parts()
            .iter()
            .map(|s| {
                let o = at;
                at += s.size();
                o
            })
            .collect();
        (offsets, at)
    }
}

/// What a result of the function means.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The per-example loss (a scalar).
    Loss,
    Metric,
    Output,
    /// The gradient of the loss with respect to the i-th parameter.
    Grad(usize),
}

/// A named value the function returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Output {
    pub role: Role,
    pub name: String,
    pub value: Value,
}

/// A parameter or input slot of the function.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    pub name: String,
    pub shape: Shape,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Inst {
    pub op: Op,
    pub args: Vec<Value>,
    pub shape: Shape,
    /// The user's name for this value (`let z = ...`), used by the printer.
    pub name: Option<String>,
    /// The source this instruction was lowered from.
    pub span: Span,
    /// In a gradient program: the part of the backward pass this
    /// instruction belongs to (`None` for the forward pass). Reports of a
    /// NaN name it; it does not change what the instruction computes.
    pub backward: Option<Backward>,
}

impl Inst {
    /// What is left where an instruction was moved from: nothing allocated.
    fn moved() -> Inst {
        Inst {
            op: Op::Param(0),
            args: Vec::new(),
            shape: Shape(Vec::new()),
            name: None,
            span: Span::default(),
            backward: None,
        }
    }
}

/// What a backward-pass instruction of a gradient program computes, for
/// reports: with its span (the forward expression), it names the chain-rule
/// step.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Backward {
    /// Part of the vector-Jacobian product of a forward operation (its
    /// mnemonic, as printed): the chain-rule step through it.
    Step(&'static str),
    /// The sum of the contributions a forward value received: its adjoint.
    Adjoint,
}

/// A straight-line program over parameters and the inputs of one example.
///
/// The instructions are private so that the SSA invariant holds by
/// construction: an instruction is appended only by [`Function::push`], which
/// checks its arguments' shapes, and every argument is an earlier value. The
/// passes rebuild a function through [`Function::rewrite`] and
/// [`Function::retain`], which renumber values and keep the order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Function {
    pub params: Vec<Slot>,
    pub inputs: Vec<Slot>,
    insts: Vec<Inst>,
    pub outputs: Vec<Output>,
}

impl Function {
    pub fn new(params: Vec<Slot>, inputs: Vec<Slot>) -> Function {
        Function {
            params,
            inputs,
            insts: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// The instructions in value order (a topological order).
    pub fn insts(&self) -> &[Inst] {
        &self.insts
    }

    /// The number of instructions.
    pub fn len(&self) -> usize {
        self.insts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insts.is_empty()
    }

    /// Every value, in order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = Value> + ExactSizeIterator + use<> {
        (0..self.insts.len()).map(Value::at)
    }

    /// Every value with its instruction, in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (Value, &Inst)> + ExactSizeIterator {
        self.insts
            .iter()
            .enumerate()
            .map(|(i, inst)| (Value::at(i), inst))
    }

    /// The loops of the function, to change their bodies in place (the
    /// simplifier's): a body must keep the shapes of its parameters and
    /// outputs, which the loop's own shape and arguments depend on.
    pub fn loops_mut(&mut self) -> impl Iterator<Item = &mut Loop> {
        self.insts.iter_mut().filter_map(|i| match &mut i.op {
            Op::Loop(l) => Some(&mut **l),
            _ => None,
        })
    }

    /// The value at `index`, or `None` past the last instruction.
    pub fn value(&self, index: usize) -> Option<Value> {
        (index < self.insts.len()).then(|| Value::at(index))
    }

    /// The value the next instruction pushed will be: for a pass that
    /// records it before [`Function::rewrite`] pushes a kept instruction.
    pub fn next_value(&self) -> Value {
        Value::at(self.insts.len())
    }

    pub fn inst(&self, v: Value) -> &Inst {
        &self.insts[v.index()]
    }

    pub fn shape(&self, v: Value) -> &Shape {
        &self.insts[v.index()].shape
    }

    /// Appends an instruction; its shape is inferred from the operation and the
    /// argument shapes. Panics on ill-shaped arguments: the checker and the
    /// passes must never produce them, so that is a compiler bug.
    pub fn push(&mut self, op: Op, args: Vec<Value>, span: Span) -> Value {
        // The arguments' shapes on the stack for up to three (nearly all).
        let of = |a: &Value| self.shape(*a);
        let result = match &args[..] {
            [] => verify::result_shape(self, &op, &[]),
            [a] => verify::result_shape(self, &op, &[of(a)]),
            [a, b] => verify::result_shape(self, &op, &[of(a), of(b)]),
            [a, b, c] => verify::result_shape(self, &op, &[of(a), of(b), of(c)]),
            more => {
                let shapes: Vec<&Shape> = more.iter().map(of).collect();
                verify::result_shape(self, &op, &shapes)
            }
        };
        let shape = match result {
            Ok(s) => s,
            Err(e) => panic!("ill-shaped {op:?} {args:?}: {e}"),
        };
        self.insts.push(Inst {
            op,
            args,
            shape,
            name: None,
            span,
            backward: None,
        });
        Value::at(self.insts.len() - 1)
    }

    /// Appends a copy of `inst` (its operation, shape, span, name and
    /// pass) reading `args`, values of the shapes of its own arguments: an
    /// instruction inlined from another function, its shape not inferred
    /// again (checked in debug builds, as [`Function::push`] checks).
    pub fn push_copy(&mut self, inst: &Inst, args: Vec<Value>) -> Value {
        if cfg!(debug_assertions) {
            let shapes: Vec<&Shape> = args.iter().map(|&a| self.shape(a)).collect();
            let shape = verify::result_shape(self, &inst.op, &shapes);
            assert_eq!(shape.as_ref(), Ok(&inst.shape), "{:?} {args:?}", inst.op);
        }
        self.insts.push(Inst {
            op: inst.op.clone(),
            args,
            shape: inst.shape.clone(),
            name: inst.name.clone(),
            span: inst.span,
            backward: inst.backward,
        });
        Value::at(self.insts.len() - 1)
    }

    /// Marks the instructions from `from` on, those without a mark, as
    /// `backward` (the autodiff marks what each rule pushed).
    pub fn mark_backward(&mut self, from: usize, backward: Backward) {
        for inst in self.insts.iter_mut().skip(from) {
            inst.backward.get_or_insert(backward);
        }
    }

    /// Appends the instructions of `callee` with its parameters and inputs
    /// replaced by the values `params` and `inputs` of this function, and
    /// returns the values of its outputs, in order. Names, spans and
    /// backward tags are kept.
    pub fn inline(&mut self, callee: &Function, params: &[Value], inputs: &[Value]) -> Vec<Value> {
        let mut map: Vec<Value> = Vec::with_capacity(callee.len());
        for inst in &callee.insts {
            let v = match inst.op {
                Op::Param(i) => params[i],
                Op::Input(i) => inputs[i],
                _ => {
                    let args = inst.args.iter().map(|a| map[a.index()]).collect();
                    self.push_copy(inst, args)
                }
            };
            map.push(v);
        }
        callee
            .outputs
            .iter()
            .map(|o| map[o.value.index()])
            .collect()
    }

    /// Removes the names of the backward pass's instructions (the
    /// adjoints' `d<name>`).
    pub fn clear_backward_names(&mut self) {
        for inst in &mut self.insts {
            if inst.backward.is_some() {
                inst.name = None;
            }
        }
    }

    /// Gives a value the user's name, unless it has one already.
    pub fn set_name(&mut self, v: Value, name: &str) {
        let inst = &mut self.insts[v.index()];
        if inst.name.is_none() {
            inst.name = Some(name.to_string());
        }
    }

    /// The value returned in the given role, if any.
    pub fn output(&self, role: &Role) -> Option<Value> {
        self.outputs
            .iter()
            .find(|o| &o.role == role)
            .map(|o| o.value)
    }
}

impl Function {
    /// Rebuilds the function one instruction at a time. `rule` sees each
    /// instruction with its arguments already renamed into the function being
    /// built, `out`, and either returns the value that replaces it (pushing
    /// onto `out` whatever it needs first) or `None` to keep it, in which case
    /// the instruction is pushed unchanged and becomes `out.next_value()` as
    /// seen by the rule. All uses and outputs follow the replacement. Returns
    /// whether any rule fired. The replaced instructions are dropped; their
    /// arguments may be left dead, for dead code elimination.
    pub fn rewrite(&mut self, mut rule: impl FnMut(&mut Function, &Inst) -> Option<Value>) -> bool {
        let mut out = Function::new(
            std::mem::take(&mut self.params),
            std::mem::take(&mut self.inputs),
        );
        // Room for as many instructions and a few the rules add, so that
        // the 160-byte instructions are not moved again as it grows.
        out.insts.reserve(self.insts.len() + self.insts.len() / 8);
        let mut map: Vec<Value> = Vec::with_capacity(self.insts.len());
        let mut changed = false;
        // Each instruction kept is moved once, from its place in `source`
        // (a placeholder left there), not out of it and again into `out`.
        let mut source = std::mem::take(&mut self.insts);
        for inst in source.iter_mut() {
            for a in &mut inst.args {
                *a = map[a.index()];
            }
            let before = out.insts.len();
            let v = match rule(&mut out, inst) {
                Some(v) => {
                    // What the rule pushed belongs to the same pass as
                    // the instruction it replaces.
                    if let Some(b) = inst.backward {
                        out.mark_backward(before, b);
                    }
                    assert_eq!(
                        out.shape(v),
                        &inst.shape,
                        "a rewrite of {:?} changed its shape",
                        inst.op
                    );
                    if let Some(name) = &inst.name {
                        out.set_name(v, name);
                    }
                    changed = true;
                    v
                }
                None => {
                    // The arguments were renamed to earlier values of `out`,
                    // and the instruction is unchanged, so its shape holds.
                    out.insts.push(std::mem::replace(inst, Inst::moved()));
                    Value::at(out.insts.len() - 1)
                }
            };
            map.push(v);
        }
        out.outputs = std::mem::take(&mut self.outputs);
        for o in &mut out.outputs {
            o.value = map[o.value.index()];
        }
        *self = out;
        changed
    }

    /// Keeps the instructions with `keep[i]` set, renumbering values. Kept
    /// instructions must use only kept values, and outputs only kept values.
    pub fn retain(&mut self, keep: &[bool]) {
        assert_eq!(keep.len(), self.insts.len(), "one flag per instruction");
        let mut kept = 0;
        let map: Vec<Option<Value>> = keep
            .iter()
            .map(|&k| {
                k.then(|| {
                    kept += 1;
                    Value::at(kept - 1)
                })
            })
            .collect();
        // In place: a kept instruction moves down only past removed ones.
        let mut flags = keep.iter();
        self.insts.retain_mut(|inst| {
            let k = *flags.next().expect("one flag per instruction");
            if k {
                for a in &mut inst.args {
                    *a = map[a.index()].expect("a kept instruction uses only kept values");
                }
            }
            k
        });
        for o in &mut self.outputs {
            o.value = map[o.value.index()].expect("outputs are kept");
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&printer::print(self))
    }
}
