//! What can go wrong while a function runs, as data, the same from the
//! interpreter and from the compiled code:
//!
//! - [`RunError::Fault`]: the program itself failed at one instruction on
//!   the values it was given (a [`Fault`], e.g. a class index out of range).
//!   It is the user's error: it carries the instruction and its span, and
//!   the driver and the runtime turn it into a
//!   [`crate::diagnostic::Error`] placed at that span
//!   ([`crate::eval::run_error`]).
//! - [`RunError::Misuse`]: the caller passed arguments that do not fit the
//!   function (their number, a shape, a buffer's length, a scratch buffer
//!   made for another function). A bug of the caller, never of the user's
//!   program; reported as a message rather than a panic.
//!
//! Refusals to compile are not here: the backend's compile entry points
//! return a [`crate::backend::CompileError`] (a size or host limit, or a
//! compiler bug), a message about no place in the program, before anything
//! runs.

use std::fmt;

use super::Value;
use crate::shape::fmt_num;
use crate::span::Span;

/// What a program did wrong on the values it was given.
#[derive(Copy, Clone, Debug)]
pub enum Fault {
    /// A `one_hot` (also the one `cross_entropy` is lowered to) got a class
    /// index that is not an integer in `0..classes`.
    ClassIndex { class: f64, classes: usize },
    /// An index computed at run time (`x[t - 1]`, `E[tok]`) that is not an
    /// integer in `0..len`.
    Index { index: f64, len: usize },
}

impl Fault {
    /// The fault of `one_hot(class, classes)`, if `class` is not an integer
    /// in `0..classes`: the one place this rule is written, for the
    /// interpreter and the compiled code alike.
    pub fn one_hot(class: f64, classes: usize) -> Option<Fault> {
        let whole = class.fract() == 0.0;
        let ok = whole && class >= 0.0 && class < classes as f64;
        (!ok).then_some(Fault::ClassIndex { class, classes })
    }
}

impl Fault {
    /// The fault of `x[index]` on an axis of `len`, if `index` is not an
    /// integer in `0..len`: the one place this rule is written.
    pub fn index(index: f64, len: usize) -> Option<Fault> {
        let ok = index.fract() == 0.0 && index >= 0.0 && index < len as f64;
        (!ok).then_some(Fault::Index { index, len })
    }
}

/// Whether `inst` of `f` is a gather or a scatter-add at constant indices
/// that are all integers in range, so that it cannot fail: the one place
/// this is decided, for the passes and the backend alike.
pub fn safe_rows(f: &super::Function, inst: &super::Inst) -> bool {
    match inst.op {
        super::Op::Gather | super::Op::ScatterAdd => {
            let (x, at) = (inst.args[0], inst.args[inst.args.len() - 1]);
            let n = f.shape(x).dims()[0];
            matches!(&f.inst(at).op, super::Op::Const(c)
                if c.0.data.iter().all(|&k| Fault::index(k, n).is_none()))
        }
        _ => false,
    }
}

/// Whether `inst` of `f` can fail at run time: its operation [`can_fail`],
/// unless it is a gather or a scatter at constant indices all in range
/// ([`safe_rows`]). The passes and the backend keep such instructions in
/// their order, so that the first failure is the interpreter's.
pub fn can_fail_at(f: &super::Function, inst: &super::Inst) -> bool {
    can_fail(&inst.op) && !safe_rows(f, inst)
}

/// Whether `op` can fail at run time (a `one_hot` of a class out of range):
/// such an instruction always runs, per example, and keeps its order among
/// the others that can fail, so that the first failure is the
/// interpreter's. Every operation is listed, so that a new one is decided
/// here.
pub fn can_fail(op: &super::Op) -> bool {
    use super::Op;
    match op {
        Op::OneHot(_)
        | Op::Index
        | Op::IndexAdd
        | Op::IndexSet
        | Op::Gather
        | Op::ScatterAdd
        | Op::Loop(_) => true,
        Op::Param(_)
        | Op::Input(_)
        | Op::Const(_)
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::Select
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
        | Op::Reshape(_)
        | Op::Permute(_)
        | Op::Concat
        | Op::Broadcast(_)
        | Op::Slice(_)
        | Op::Unslice(..)
        | Op::Pack => false,
    }
}

impl PartialEq for Fault {
    /// The same fault, a NaN class equal to a NaN class (the interpreter's
    /// and the machine code's NaNs may differ in their payload).
    fn eq(&self, other: &Fault) -> bool {
        let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
        match (self, other) {
            (
                Fault::ClassIndex { class, classes },
                Fault::ClassIndex {
                    class: c,
                    classes: n,
                },
            ) => same(*class, *c) && classes == n,
            (Fault::Index { index, len }, Fault::Index { index: i, len: n }) => {
                same(*index, *i) && len == n
            }
            _ => false,
        }
    }
}

impl fmt::Display for Fault {
    /// One line, the same whichever builtin the user called:
    /// `class index 3.5 is not an integer`, `class index 3 is out of range
    /// for 3 classes (0 to 2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fault::ClassIndex { class, classes } => {
                write!(f, "class index {} ", fmt_num(class))?;
                if class.fract() != 0.0 {
                    // NaN and the infinities too: their `fract` is NaN.
                    write!(f, "is not an integer")
                } else if classes == 1 {
                    write!(f, "is out of range for 1 class (only 0)")
                } else {
                    write!(
                        f,
                        "is out of range for {classes} classes (0 to {})",
                        classes - 1
                    )
                }
            }
            Fault::Index { index, len } => {
                write!(f, "index {} ", fmt_num(index))?;
                if index.fract() != 0.0 {
                    write!(f, "is not an integer")
                } else if len == 1 {
                    write!(f, "is out of range for an axis of length 1 (only 0)")
                } else {
                    write!(
                        f,
                        "is out of range for an axis of length {len} (0 to {})",
                        len - 1
                    )
                }
            }
        }
    }
}

/// Why running a function failed.
#[derive(Clone, Debug, PartialEq)]
pub enum RunError {
    /// The program failed at instruction `at` (lowered from `span` of its
    /// source) on the values given.
    Fault {
        at: Value,
        span: Span,
        /// In a batched run: the example of the batch (0-based) it failed
        /// on. `None` for a run of one example.
        example: Option<usize>,
        fault: Fault,
    },
    /// The arguments do not fit the function; the message says how.
    Misuse(String),
}

impl RunError {
    /// A fault at instruction `at`, lowered from `span`.
    pub fn fault(at: Value, span: Span, fault: Fault) -> RunError {
        RunError::Fault {
            at,
            span,
            example: None,
            fault,
        }
    }

    /// The example of a batch a fault happened on.
    pub fn example(&self) -> Option<usize> {
        match self {
            RunError::Fault { example, .. } => *example,
            RunError::Misuse(_) => None,
        }
    }

    /// This error, with a fault placed on `example` of a batch (`None`:
    /// the run of one example); a misuse is left as it is.
    pub fn in_example(self, example: Option<usize>) -> RunError {
        match self {
            RunError::Fault {
                at, span, fault, ..
            } => RunError::Fault {
                at,
                span,
                example,
                fault,
            },
            e @ RunError::Misuse(_) => e,
        }
    }
}

impl fmt::Display for RunError {
    /// The fault's message (after `example k: ` in a batch), or the
    /// misuse's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Fault {
                example: Some(k),
                fault,
                ..
            } => write!(f, "example {k}: {fault}"),
            RunError::Fault { fault, .. } => write!(f, "{fault}"),
            RunError::Misuse(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for RunError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_classes_and_their_messages() {
        assert_eq!(Fault::one_hot(0.0, 3), None);
        assert_eq!(Fault::one_hot(-0.0, 3), None);
        assert_eq!(Fault::one_hot(2.0, 3), None);
        let msg = |c: f64, n: usize| Fault::one_hot(c, n).unwrap().to_string();
        assert_eq!(
            msg(3.0, 3),
            "class index 3 is out of range for 3 classes (0 to 2)"
        );
        assert_eq!(
            msg(-1.0, 3),
            "class index -1 is out of range for 3 classes (0 to 2)"
        );
        assert_eq!(
            msg(1.0, 1),
            "class index 1 is out of range for 1 class (only 0)"
        );
        assert_eq!(msg(3.5, 3), "class index 3.5 is not an integer");
        assert_eq!(msg(f64::NAN, 3), "class index NaN is not an integer");
        assert_eq!(msg(f64::INFINITY, 3), "class index inf is not an integer");
        assert_eq!(Fault::one_hot(f64::NAN, 2), Fault::one_hot(-f64::NAN, 2));
        assert_ne!(Fault::one_hot(5.0, 2), Fault::one_hot(5.0, 3));
    }
}
