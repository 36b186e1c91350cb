//! The one engine abstraction: an IR function ready to run on one of the
//! ways gradc runs programs, the Cranelift JIT (one example a call, or a
//! whole batch a call) or the reference interpreter.
//!
//! [`Evaluator`] runs one example with tensors (evaluation, gradients at a
//! point, the gradient check, Hessian rows); the training runtime's
//! [`crate::runtime::engine::Engine`] holds an `Evaluator` with its scratch
//! and buffers, allocated once, to run batches without allocating.
//!
//! Errors: compiling gives the backend's [`CompileError`] (a host or size
//! limit, or a compiler bug: nothing about a place in the program); running gives
//! a [`RunError`], the same from every mode. The driver and the runtime turn
//! both into [`Error`]s here: [`compile_failed`], and [`run_error`], which
//! places a fault at its instruction's span in the program's source.

use std::sync::Arc;

use crate::backend::{self, BatchOptions, BatchedFunction, CompileError, JitFunction, Scratch};
use crate::diagnostic::{Error, Location, Source};
use crate::dtype::Dtype;
use crate::ir::{interp, nonfinite, Backward, Fault, Function, Role, RunError};
use crate::shape::Tensor;
use crate::span::Span;

/// Which engine evaluates programs.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Native code compiled with Cranelift.
    #[default]
    Jit,
    /// The reference interpreter, in plain f64 Rust: slow, obviously correct.
    Interp,
}

/// How a program runs: the three give the same numbers, bit for bit.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// The JIT, one call per batch (the loop over examples in machine code).
    #[default]
    Batched,
    /// The JIT, one call per example.
    PerExample,
    /// The reference interpreter.
    Interp,
}

impl From<Backend> for Mode {
    fn from(b: Backend) -> Mode {
        match b {
            Backend::Jit => Mode::Batched,
            Backend::Interp => Mode::Interp,
        }
    }
}

/// Runs an [`Evaluator`] again and again (a benchmark's repeated runs),
/// keeping the JIT's scratch and the outputs' buffers from one run to the
/// next: a large program's scratch (the saved states of a long loop, tens
/// of megabytes) is then allocated, and its pages first touched, once,
/// not at every run.
pub struct Runner<'a> {
    evaluator: &'a Evaluator,
    scratch: Option<Scratch>,
    outs: Vec<Tensor>,
}

impl Runner<'_> {
    /// [`Evaluator::outputs`] at `params` and `inputs`, into the kept
    /// buffers.
    pub fn run(&mut self, params: &[Tensor], inputs: &[Tensor]) -> Result<&[Tensor], RunError> {
        match self.evaluator {
            Evaluator::Jit(j) => {
                let f = j.function();
                interp::check_slots("parameter", &f.params, params)?;
                interp::check_slots("input", &f.inputs, inputs)?;
                if self.outs.is_empty() {
                    self.outs = f
                        .outputs
                        .iter()
                        .map(|o| Tensor::zeros(f.shape(o.value).clone()))
                        .collect();
                }
                let scratch = self.scratch.get_or_insert_with(|| j.scratch());
                let p: Vec<&[f64]> = params.iter().map(|t| &t.data[..]).collect();
                let i: Vec<&[f64]> = inputs.iter().map(|t| &t.data[..]).collect();
                let mut o: Vec<&mut [f64]> =
                    self.outs.iter_mut().map(|t| &mut t.data[..]).collect();
                j.run_into(scratch, &p, &i, &mut o)?;
            }
            e => self.outs = e.outputs(params, inputs)?,
        }
        Ok(&self.outs)
    }

    /// The outputs of the last run (none before the first).
    pub fn last(&self) -> &[Tensor] {
        &self.outs
    }
}

/// A function ready to run, in one [`Mode`].
pub enum Evaluator {
    Interp(Function),
    /// One example per call.
    Jit(Box<JitFunction>),
    /// A batch per call; with `Role::Output`s, they are computed per example.
    Batched(Box<BatchedFunction>),
}

impl Evaluator {
    /// `f` on a backend, one example per call. An error is the backend's
    /// refusal to compile it (see [`compile_failed`]).
    pub fn new(f: &Function, backend: Backend) -> Result<Evaluator, CompileError> {
        Evaluator::compile(
            f,
            match backend {
                Backend::Jit => Mode::PerExample,
                Backend::Interp => Mode::Interp,
            },
        )
    }

    /// `f` compiled (or kept, for the interpreter) to run as `mode` says.
    pub fn compile(f: &Function, mode: Mode) -> Result<Evaluator, CompileError> {
        Evaluator::compile_with(f, mode, Dtype::F64)
    }

    /// [`Self::compile`], the batched function computing in `dtype` (the
    /// other modes compute in f64 whatever `dtype` says).
    pub fn compile_with(f: &Function, mode: Mode, dtype: Dtype) -> Result<Evaluator, CompileError> {
        Ok(match mode {
            Mode::Interp => Evaluator::Interp(f.clone()),
            Mode::PerExample => Evaluator::Jit(Box::new(backend::compile(f)?)),
            Mode::Batched => {
                let options = BatchOptions {
                    per_example_outputs: f.outputs.iter().any(|o| o.role == Role::Output),
                    dtype,
                    ..BatchOptions::default()
                };
                Evaluator::Batched(Box::new(backend::compile_batched_with(f, options)?))
            }
        })
    }

    pub fn function(&self) -> &Function {
        match self {
            Evaluator::Interp(f) => f,
            Evaluator::Jit(j) => j.function(),
            Evaluator::Batched(b) => b.function(),
        }
    }

    /// A scratch buffer for the compiled code, to reuse across calls (`None`
    /// for the interpreter).
    pub fn scratch(&self) -> Option<Scratch> {
        match self {
            Evaluator::Interp(_) => None,
            Evaluator::Jit(j) => Some(j.scratch()),
            Evaluator::Batched(b) => Some(b.scratch()),
        }
    }

    /// The outputs of the function for one example, in `function().outputs`
    /// order.
    pub fn outputs(&self, params: &[Tensor], inputs: &[Tensor]) -> Result<Vec<Tensor>, RunError> {
        match self {
            Evaluator::Interp(f) => Ok(interp::run_outputs(f, params, inputs)?
                .into_iter()
                .map(|(_, t)| t)
                .collect()),
            Evaluator::Jit(j) => j.run(params, inputs),
            Evaluator::Batched(b) => {
                let f = b.function();
                let rows: Vec<&[f64]> = inputs.iter().map(|t| &t.data[..]).collect();
                let mut values: Vec<Option<Tensor>> = vec![None; f.outputs.len()];
                // One example: no example of a batch to name.
                let outs = b.run(params, &rows, 1).map_err(|e| e.in_example(None))?;
                for (o, t) in b.outputs().iter().zip(outs) {
                    let shape = f.shape(f.outputs[o.index].value).clone();
                    values[o.index] = Some(Tensor::new(shape, t.data));
                }
                values
                    .into_iter()
                    .zip(&f.outputs)
                    .map(|(v, o)| {
                        v.ok_or_else(|| {
                            RunError::Misuse(format!(
                                "the batched function does not compute `{}`",
                                o.name
                            ))
                        })
                    })
                    .collect()
            }
        }
    }

    /// A [`Runner`]: [`Self::outputs`] run again and again on buffers
    /// kept between runs.
    pub fn runner(&self) -> Runner<'_> {
        Runner {
            evaluator: self,
            scratch: None,
            outs: Vec::new(),
        }
    }

    /// The output in the given role.
    pub fn output(
        &self,
        role: &Role,
        params: &[Tensor],
        inputs: &[Tensor],
    ) -> Result<Tensor, RunError> {
        let k = self
            .function()
            .outputs
            .iter()
            .position(|o| &o.role == role)
            .ok_or_else(|| RunError::Misuse(format!("the program has no {role:?} output")))?;
        Ok(self.outputs(params, inputs)?.swap_remove(k))
    }
}

/// The backend's refusal to compile a program, as an [`Error`].
pub fn compile_failed(e: CompileError) -> Error {
    Error::new(format!("cannot compile the program: {e}"))
}

/// A failure of running a program compiled from `source`, as an [`Error`]:
/// a fault placed at its instruction's span, underlined with what the call
/// there takes (worded by the builtin the user wrote, when the span is a
/// call of one); a misuse as a message without a place.
pub fn run_error(source: &Arc<Source>, e: &RunError) -> Error {
    match e {
        RunError::Fault { span, fault, .. } => {
            let message = fault.to_string();
            if *span == Span::default() {
                return Error::new(message);
            }
            let callee = callee(&source.text, *span);
            let e = Error::at(Location::span(source, *span), message);
            match fault {
                Fault::ClassIndex { class, classes } => {
                    let range = match classes {
                        1 => "the class index 0".to_string(),
                        n => format!("a class index from 0 to {}", n - 1),
                    };
                    let label = match callee {
                        Some("cross_entropy") => {
                            format!("`cross_entropy` of {classes} logits takes {range}")
                        }
                        Some("one_hot") => format!("`one_hot` of {classes} classes takes {range}"),
                        _ => format!("{range} is needed here"),
                    };
                    let e = e.label(*span, label);
                    if *class == *classes as f64 {
                        e.hint(format!(
                            "classes are counted from 0: the last of {classes} is {}",
                            classes - 1
                        ))
                    } else {
                        e
                    }
                }
                Fault::Index { index, len } => {
                    let label = match len {
                        1 => "only the index 0 is in range here".to_string(),
                        n => format!("an index from 0 to {} is needed here", n - 1),
                    };
                    let e = e.label(*span, label);
                    if *index == *len as f64 {
                        e.hint(format!(
                            "indices count from 0: the last of {len} is {}",
                            len - 1
                        ))
                    } else {
                        e
                    }
                }
            }
        }
        RunError::Misuse(m) => Error::new(format!("the program cannot be run: {m}")),
    }
}

/// Where a non-finite result comes from ([`nonfinite::trace`]), as an
/// [`Error`] with the headline `headline`: the origin's expression
/// underlined in `source`, saying which pass (and for the backward pass,
/// which chain-rule step) produced the first NaN or infinity, its operands'
/// values, and a hint for the usual causes. The caller adds the example's
/// data row as a note.
pub fn non_finite_error(source: &Arc<Source>, o: &nonfinite::Origin, headline: String) -> Error {
    let gives = o.result.non_finite();
    let target = nonfinite::describe_output(&o.output);
    let what = match o.backward {
        None => format!("`{}` gives {gives} here, in the forward pass", o.op),
        Some(Backward::Step(op)) if op == o.op => format!(
            "the chain-rule step through `{op}` gives {gives} here, in the backward pass"
        ),
        Some(Backward::Step(op)) => format!(
            "the chain-rule step through `{op}` (its `{}`) gives {gives} here, in the backward pass",
            o.op
        ),
        Some(Backward::Adjoint) => format!(
            "the gradient contributions summed here give {gives}, in the backward pass"
        ),
    };
    let label = format!("{what}: the first non-finite value on the way to {target}");
    let operands = o
        .operands
        .iter()
        .map(|a| {
            // Not the origin's own text (an operand of a composite builtin,
            // such as `mse`'s square, has the call's span).
            let own = a.span.filter(|s| *s != o.span);
            let text = own.and_then(|s| source.text.get(s.lo as usize..s.hi as usize));
            let short = text.filter(|t| t.len() <= 40 && !t.contains('\n'));
            match (&a.name, short) {
                (Some(n), _) => format!("{n} = {}", a.value.describe()),
                (None, Some(t)) => format!("`{t}` = {}", a.value.describe()),
                (None, None) => a.value.describe(),
            }
        })
        .collect::<Vec<_>>();
    let mut e = if o.span == Span::default() {
        Error::new(format!("{headline}: {label}"))
    } else {
        Error::at(Location::span(source, o.span), headline).label(o.span, label)
    };
    if !operands.is_empty() {
        let of = if let (None, Some(n)) = (o.backward, &o.name) {
            format!("`{}` (computing {n})", o.op)
        } else {
            format!("`{}`", o.op)
        };
        e = e.note(
            None,
            format!("the operands of {of}: {}", operands.join("; ")),
        );
    }
    let hint = match (o.backward, o.op) {
        (None, "log") => Some(
            "`log` of 0 is -inf and of a negative number NaN: keep its argument positive \
             (a loss on logits, such as `bce_logits` or `cross_entropy`, does so)",
        ),
        (None, "div") => Some("a division by 0 (or 0 / 0, or inf / inf)"),
        (None, "exp") => Some("`exp` overflows above about 709.78: scale the input down"),
        (None, "sqrt") => Some("`sqrt` of a negative number is NaN"),
        (Some(Backward::Step("sqrt")), _) => {
            Some("the derivative of `sqrt` is infinite at 0: add a small constant under it")
        }
        (Some(Backward::Step("log")), _) => {
            Some("the derivative of `log` is infinite at 0: keep its argument away from 0")
        }
        (Some(Backward::Step("norm")), _) => {
            Some("the derivative of `norm` is undefined at the zero vector")
        }
        _ => None,
    };
    if let Some(h) = hint {
        e = e.hint(h);
    }
    e
}

/// Where the first non-finite output of `f` for which `watched` holds comes
/// from, on one example, as an [`Error`] headed by `headline` (see
/// [`non_finite_error`]); `None` if they are all finite, or the checked
/// re-run itself fails (a fault the caller reports on its own).
pub fn trace_non_finite(
    f: &Function,
    source: &Arc<Source>,
    params: &[Tensor],
    inputs: &[Tensor],
    watched: impl Fn(&crate::ir::Output) -> bool,
    headline: impl Fn(&nonfinite::Origin) -> String,
) -> Option<Error> {
    let origin = nonfinite::trace(f, params, inputs, watched).ok()??;
    Some(non_finite_error(source, &origin, headline(&origin)))
}

/// The function a span of `text` calls, if it is a call (`name(...)`).
fn callee(text: &str, span: Span) -> Option<&str> {
    let s = text.get(span.lo as usize..span.hi as usize)?;
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    let rest = s[end..].trim_start();
    (end > 0 && rest.starts_with('(')).then_some(&s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three modes give the same outputs, bit for bit.
    #[test]
    fn every_mode_computes_the_same_outputs() {
        let c = crate::compile(
            "param w: [2] = [0.5, -1]\ninput x: [2]\nlet z = dot(w, x)\nloss z^2\noutput p = sigmoid(z)\n",
        )
        .unwrap();
        let g = c.gradient().unwrap();
        let params = c.initial_params(0);
        let x = Tensor::new(crate::shape::Shape::vector(2), vec![1.5, 0.25]);
        let outs = |mode| {
            Evaluator::compile(&g, mode)
                .unwrap()
                .outputs(&params, std::slice::from_ref(&x))
                .unwrap()
        };
        let interp = outs(Mode::Interp);
        assert_eq!(interp.len(), g.outputs.len());
        assert_eq!(outs(Mode::PerExample), interp);
        assert_eq!(outs(Mode::Batched), interp);
    }

    const CLASSES: &str = "input x: [2]\ninput y\nparam W: [3, 2] = [[1, 2], [3, 4], [5, 6]]\n\
                           loss cross_entropy(W @ x, y)\n";

    /// The interpreter, the JIT one example per call and the batched JIT
    /// report the same fault for a bad class: the same instruction, the
    /// same message, in the forward and in the gradient program; a batch
    /// names the example that failed.
    #[test]
    fn every_mode_gives_the_same_fault() {
        let c = crate::compile(CLASSES).unwrap();
        let params = c.initial_params(0);
        let x = Tensor::new(crate::shape::Shape::vector(2), vec![1.0, -1.0]);
        for f in [c.ir.clone(), c.gradient().unwrap()] {
            for y in [3.0, -1.0, 0.5, f64::NAN] {
                let inputs = [x.clone(), Tensor::scalar(y)];
                let fault = |mode| {
                    let e = Evaluator::compile(&f, mode).unwrap();
                    e.outputs(&params, &inputs).unwrap_err()
                };
                let want = fault(Mode::Interp);
                let RunError::Fault { at, span, .. } = want else {
                    panic!("not a fault: {want:?}");
                };
                assert_eq!(f.inst(at).op, crate::ir::Op::OneHot(3));
                assert_eq!(
                    &CLASSES[span.lo as usize..span.hi as usize],
                    "cross_entropy(W @ x, y)"
                );
                assert_eq!(fault(Mode::PerExample), want);
                assert_eq!(fault(Mode::Batched), want);

                // Three examples, the second bad.
                let b = backend::compile_batched(&f).unwrap();
                let xs = [x.data.clone(), x.data.clone(), x.data.clone()].concat();
                let e = b.run(&params, &[&xs, &[0.0, y, 2.0]], 3).unwrap_err();
                assert_eq!(e, want.clone().in_example(Some(1)));
                assert_eq!(e.to_string(), format!("example 1: {want}"));
            }
        }
    }

    /// A fault is placed at the call the user wrote, worded by its builtin.
    #[test]
    fn faults_are_placed_at_the_call() {
        let fault = |src: &str, y: f64| {
            let source = Source::new("m.grad", src);
            let c = crate::compile_source(&source, &Default::default()).unwrap();
            let e = Evaluator::new(&c.ir, Backend::Interp).unwrap();
            let err = e.outputs(&[], &[Tensor::scalar(y)]).unwrap_err();
            run_error(&source, &err).render(false)
        };
        let text = fault(
            "input y\nlet v = [1, 2, 3]\nloss cross_entropy(v, y)\n",
            3.0,
        );
        assert!(
            text.starts_with(
                "m.grad:3:6: error: class index 3 is out of range for 3 classes (0 to 2)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("`cross_entropy` of 3 logits takes a class index from 0 to 2"),
            "{text}"
        );
        assert!(
            text.contains("classes are counted from 0: the last of 3 is 2"),
            "{text}"
        );

        let text = fault("input c\nloss dot(one_hot(c, 2), [1, 2])\n", 0.5);
        assert!(
            text.starts_with("m.grad:2:10: error: class index 0.5 is not an integer\n"),
            "{text}"
        );
        assert!(
            text.contains("`one_hot` of 2 classes takes a class index from 0 to 1"),
            "{text}"
        );
        assert!(!text.contains("counted from 0"), "{text}");

        // Inside a user function, the span is the call of the function.
        let text = fault(
            "input c\nfn f(k) = dot(one_hot(k, 1), [2])\nloss f(c)\n",
            -1.0,
        );
        assert!(
            text.starts_with(
                "m.grad:3:6: error: class index -1 is out of range for 1 class (only 0)\n"
            ),
            "{text}"
        );
        assert!(text.contains("the class index 0 is needed here"), "{text}");
    }
}
