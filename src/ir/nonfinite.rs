//! Where a NaN or an infinity comes from: the checked re-run of one example
//! after a run produced a non-finite result.
//!
//! The compiled code does not check values (the hot loop stays free of
//! checks). When a loss, a metric, an output or a gradient is not finite,
//! the caller runs the same function on the same example here, in the
//! reference interpreter (which gives the same bits), and [`trace`] follows
//! the non-finite result back through the instructions that produced it to
//! its *origin*: the first instruction on that path whose result is not
//! finite although every operand it read is. Following the path, rather than
//! taking the first non-finite instruction in program order, skips values
//! that were non-finite but never reached the result (the untaken side of
//! an `if`, a masked cotangent).

use super::interp;
use super::printer::mnemonic;
use super::{Backward, Function, Op, Output, Role, RunError, Value};
use crate::shape::{fmt_short, Shape, Tensor};
use crate::span::Span;

/// A tensor in a few words: its value if it has one element, else its shape,
/// extremes and how many elements are not finite.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub shape: Shape,
    /// The element, for a tensor of one element.
    pub scalar: Option<f64>,
    /// The smallest and largest finite elements (`None`: none is finite).
    pub range: Option<(f64, f64)>,
    /// Elements that are NaN, +inf and -inf.
    pub nans: usize,
    pub pos_inf: usize,
    pub neg_inf: usize,
}

impl Summary {
    pub fn of(t: &Tensor) -> Summary {
        let mut s = Summary {
            shape: t.shape.clone(),
            scalar: (t.data.len() == 1).then(|| t.data[0]),
            range: None,
            nans: 0,
            pos_inf: 0,
            neg_inf: 0,
        };
        for &x in &t.data {
            if x.is_nan() {
                s.nans += 1;
            } else if x == f64::INFINITY {
                s.pos_inf += 1;
            } else if x == f64::NEG_INFINITY {
                s.neg_inf += 1;
            } else {
                let (lo, hi) = s.range.get_or_insert((x, x));
                *lo = lo.min(x);
                *hi = hi.max(x);
            }
        }
        s
    }

    pub fn is_finite(&self) -> bool {
        self.nans + self.pos_inf + self.neg_inf == 0
    }

    /// `NaN`, `-inf`, `0.5`; for a tensor `[3] from -1 to 2, 1 NaN`.
    pub fn describe(&self) -> String {
        if let Some(x) = self.scalar {
            return fmt_short(x);
        }
        let mut parts = Vec::new();
        match self.range {
            Some((lo, hi)) if lo == hi => parts.push(format!("finite elements {}", fmt_short(lo))),
            Some((lo, hi)) => parts.push(format!("from {} to {}", fmt_short(lo), fmt_short(hi))),
            None => {}
        }
        let count = |n: usize, what: &str| match n {
            0 => None,
            1 => Some(format!("1 {what}")),
            n => Some(format!("{n} {what}")),
        };
        parts.extend(count(self.nans, "NaN"));
        parts.extend(count(self.pos_inf, "inf"));
        parts.extend(count(self.neg_inf, "-inf"));
        format!("{} {}", self.shape, parts.join(", "))
    }

    /// What the non-finite elements are, in a word or two: `NaN`, `inf`,
    /// `NaN and inf`.
    pub fn non_finite(&self) -> String {
        let kinds: Vec<&str> = [
            (self.nans, "NaN"),
            (self.pos_inf, "inf"),
            (self.neg_inf, "-inf"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(_, w)| w)
        .collect();
        match kinds.as_slice() {
            [] => "finite".into(),
            [one] => (*one).into(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        }
    }
}

/// An operand of the origin: its user name, if the program gave it one,
/// the source it was computed from (forward values only: a backward value's
/// span is the forward expression it differentiates), and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Operand {
    pub name: Option<String>,
    pub span: Option<Span>,
    pub value: Summary,
}

/// The instruction a non-finite result comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    /// The output that was not finite (the first in output order), and its
    /// value.
    pub output: Output,
    pub output_value: Summary,
    pub at: Value,
    /// The mnemonic of the origin's operation (`log`, `div`, ...).
    pub op: &'static str,
    /// Its user name (`let z = ...`), if any.
    pub name: Option<String>,
    /// The source it was lowered from.
    pub span: Span,
    /// `None` in the forward pass; else the chain-rule step it belongs to.
    pub backward: Option<Backward>,
    pub result: Summary,
    pub operands: Vec<Operand>,
}

/// How an output reads in a message: `the loss`, `the gradient of `w``,
/// `metric `acc``, `output `p``.
pub fn describe_output(o: &Output) -> String {
    match o.role {
        Role::Loss => "the loss".into(),
        Role::Grad(_) => format!("the gradient of `{}`", o.name),
        Role::Metric => format!("metric `{}`", o.name),
        Role::Output => format!("output `{}`", o.name),
    }
}

impl Origin {
    /// `the loss is NaN`, `the gradient of `w` is inf`: what was found.
    pub fn headline(&self) -> String {
        let what = describe_output(&self.output);
        let v = &self.output_value;
        match v.scalar {
            Some(_) => format!("{what} is {}", v.non_finite()),
            None => format!("{what} is not finite: {}", v.describe()),
        }
    }
}

/// Runs `f` on one example in the interpreter and, if an output for which
/// `watched` holds is not finite, finds where its first non-finite value
/// comes from. `Ok(None)`: every watched output is finite.
pub fn trace(
    f: &Function,
    params: &[Tensor],
    inputs: &[Tensor],
    watched: impl Fn(&Output) -> bool,
) -> Result<Option<Origin>, RunError> {
    let values = interp::run(f, params, inputs)?;
    let bad = |v: Value| values[v.index()].data.iter().any(|x| !x.is_finite());
    let Some(output) = f
        .outputs
        .iter()
        .find(|o| watched(o) && bad(o.value))
        .cloned()
    else {
        return Ok(None);
    };
    // Back along non-finite operands to one whose operands are all finite
    // (where they were read). The earliest such operand is followed, so the
    // walk ends at the first origin on the path in program order; every step
    // goes to an earlier value, so it ends.
    let mut at = output.value;
    while let Some(&next) = culprits(f, &values, at).iter().min() {
        at = next;
    }
    let inst = f.inst(at);
    Ok(Some(Origin {
        output_value: Summary::of(&values[output.value.index()]),
        output,
        at,
        op: mnemonic(&inst.op),
        name: inst.name.clone(),
        span: inst.span,
        backward: inst.backward,
        result: Summary::of(&values[at.index()]),
        operands: inst
            .args
            .iter()
            .map(|a| {
                let arg = f.inst(*a);
                let forward = arg.backward.is_none() && arg.span != Span::default();
                // A constant's text is its value.
                let forward = forward && !matches!(arg.op, Op::Const(_));
                Operand {
                    name: arg.name.clone(),
                    span: forward.then_some(arg.span),
                    value: Summary::of(&values[a.index()]),
                }
            })
            .collect(),
    }))
}

/// The operands of `v` that are not finite where `v` reads them: every
/// argument, except that a `select` reads each side only where the
/// condition chooses it.
fn culprits(f: &Function, values: &[Tensor], v: Value) -> Vec<Value> {
    let inst = f.inst(v);
    let bad = |t: &Tensor, i: usize| {
        let x = if t.data.len() == 1 {
            t.data[0]
        } else {
            t.data[i]
        };
        !x.is_finite()
    };
    match inst.op {
        Op::Select => {
            let [c, a, b] = [0, 1, 2].map(|k| &values[inst.args[k].index()]);
            let n = inst.shape.size();
            let mut out = Vec::new();
            if (0..n).any(|i| bad(c, i)) {
                out.push(inst.args[0]);
            }
            // A NaN condition is true, like `!= 0`.
            let taken = |i: usize| {
                let x = if c.data.len() == 1 {
                    c.data[0]
                } else {
                    c.data[i]
                };
                x != 0.0
            };
            if (0..n).any(|i| taken(i) && bad(a, i)) {
                out.push(inst.args[1]);
            }
            if (0..n).any(|i| !taken(i) && bad(b, i)) {
                out.push(inst.args[2]);
            }
            out
        }
        _ => inst
            .args
            .iter()
            .copied()
            .filter(|a| values[a.index()].data.iter().any(|x| !x.is_finite()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(src: &str, inputs: &[Tensor], grad: bool) -> Option<(Origin, String)> {
        let c = crate::compile(src).unwrap();
        let f = if grad {
            c.gradient().unwrap()
        } else {
            c.ir.clone()
        };
        let params = c.initial_params(0);
        trace(&f, &params, inputs, |_| true).unwrap().map(|o| {
            let text = src[o.span.lo as usize..o.span.hi as usize].to_string();
            (o, text)
        })
    }

    #[test]
    fn a_forward_nan_is_traced_to_the_operation_that_made_it() {
        let src = "input x\nlet a = x - 1\nlet b = log(a)\nlet c = b * 2 + 1\nloss c^2\n";
        let (o, text) = origin(src, &[Tensor::scalar(1.0)], false).unwrap();
        assert_eq!(o.op, "log");
        assert_eq!(text, "log(a)");
        assert_eq!(o.backward, None);
        assert_eq!(o.result.scalar, Some(f64::NEG_INFINITY));
        assert_eq!(o.operands.len(), 1);
        assert_eq!(o.operands[0].name.as_deref(), Some("a"));
        assert_eq!(o.operands[0].value.scalar, Some(0.0));
        assert_eq!(o.output.role, Role::Loss);
        // A finite example: nothing to trace.
        assert!(origin(src, &[Tensor::scalar(2.0)], false).is_none());
    }

    #[test]
    fn a_backward_nan_is_traced_to_its_chain_rule_step() {
        // The loss sqrt(w * x) is 0 at x = 0, its derivative 1 / (2 sqrt(0))
        // is inf: the forward pass is finite, the backward is not.
        let src = "param w = 1\ninput x\nloss sqrt(w * x)\n";
        let (o, text) = origin(src, &[Tensor::scalar(0.0)], true).unwrap();
        assert_eq!(o.backward, Some(Backward::Step("sqrt")), "{o:?}");
        assert_eq!(text, "sqrt(w * x)");
        assert!(!o.result.is_finite());
        assert!(o.operands.iter().all(|a| a.value.is_finite()), "{o:?}");
        assert_eq!(o.output.role, Role::Grad(0));
    }

    #[test]
    fn a_non_finite_value_that_is_not_used_is_skipped() {
        // `log(x)` is -inf at 0 but the `if` does not take it; the NaN of the
        // loss comes from `x / y` at x = y = 0.
        let src = "input x\ninput y\nlet l = if x > 0 then log(x) else 0\nloss l + x / y\n";
        let inputs = [Tensor::scalar(0.0), Tensor::scalar(0.0)];
        let (o, text) = origin(src, &inputs, false).unwrap();
        assert_eq!(o.op, "div", "{o:?}");
        assert_eq!(text, "x / y");
        assert!(o.result.scalar.unwrap().is_nan());
    }

    #[test]
    fn summaries_name_extremes_and_counts() {
        let t = Tensor::new(Shape::vector(4), vec![1.0, f64::NAN, -2.5, f64::INFINITY]);
        let s = Summary::of(&t);
        assert_eq!(s.describe(), "[4] from -2.5 to 1, 1 NaN, 1 inf");
        assert_eq!(s.non_finite(), "NaN and inf");
        assert_eq!(Summary::of(&Tensor::scalar(f64::NAN)).describe(), "NaN");
        assert!(Summary::of(&Tensor::scalar(3.0)).is_finite());
    }
}
