//! A `.grad` input through the whole pipeline: the front end, the verifier,
//! autodiff, and the forward and gradient programs on every engine,
//! compared bit for bit.

use gradc::diagnostic::{Diagnostic, Error, Source};
use gradc::eval::{run_error, Evaluator, Mode};
use gradc::ir::{verify::verify, Function, Op, RunError};
use gradc::shape::Tensor;

use super::rng::{hash, R};
use super::Counts;

/// Programs whose values or work exceed these are compiled but not run, so
/// that every input takes milliseconds.
const MAX_ELEMENTS: usize = 1 << 16;
const MAX_FLOPS: u64 = 1 << 20;

/// The most examples in a batch, most of the time.
const MAX_BATCH: usize = 4;

/// Compiles `bytes` and, if it compiles, runs it everywhere. `Err` is a
/// failure: broken diagnostics, invalid IR, engines that disagree.
pub fn check_source(bytes: &[u8], counts: &mut Counts) -> Result<(), String> {
    let text = match gradc::source_text(bytes) {
        Ok(text) => text,
        Err(d) => {
            counts.diagnostics += 1;
            let shown = gradc::printable_text(bytes);
            return diagnostics_render(&shown, &[d]);
        }
    };
    let c = match gradc::compile(text) {
        Ok(c) => c,
        Err(diags) => {
            counts.diagnostics += 1;
            return diagnostics_render(text, &diags);
        }
    };
    counts.compiled += 1;
    verify(&c.raw).map_err(|e| format!("the lowered IR does not verify: {e}"))?;
    verify(&c.ir).map_err(|e| format!("the simplified IR does not verify: {e}"))?;
    if too_large(&c.ir) {
        counts.skipped += 1;
        return Ok(());
    }
    let mut functions = vec![("forward", c.ir.clone())];
    match c.gradient() {
        Ok(g) => {
            counts.gradients += 1;
            verify(&g).map_err(|e| format!("the gradient program does not verify: {e}"))?;
            if too_large(&g) {
                counts.skipped += 1;
            } else {
                functions.push(("gradient", g));
            }
        }
        Err(d) => {
            counts.diagnostics += 1;
            diagnostics_render(text, &[d])?;
        }
    }
    let mut r = R::new(hash(bytes));
    let initial = c.initial_params(r.u64() % 4);
    if r.chance(0.25) {
        let inputs = random_inputs(&c.ir, &mut r, false);
        hessians_agree(&c, &initial, &inputs, counts)?;
    }
    for (kind, f) in &functions {
        let engines = Engines::new(f).map_err(|e| format!("{kind}: {e}"))?;
        let value_sets = [
            (initial.clone(), false),
            (random_params(f, &mut r, false), false),
            (random_params(f, &mut r, true), true),
        ];
        for (params, wild) in &value_sets {
            // Mostly a few examples; now and then enough for the batched
            // code's chunks of examples and their remainders.
            let n = if r.chance(0.1) {
                *r.pick(&[8, 9, 17, 33, 33, 33, 257])
            } else {
                1 + r.below(MAX_BATCH)
            };
            let examples: Vec<Vec<Tensor>> =
                (0..n).map(|_| random_inputs(f, &mut r, *wild)).collect();
            counts.runs += 1;
            let faulted = engines
                .compare(params, &examples, &c.source)
                .map_err(|e| format!("{kind}: {e}"))?;
            if faulted {
                counts.faults += 1;
            }
        }
    }
    Ok(())
}

/// The Hessian (`gradc hessian`: one program per row) on the interpreter
/// and the JIT, for programs with a few parameter elements.
fn hessians_agree(
    c: &gradc::Compiled,
    params: &[Tensor],
    inputs: &[Tensor],
    counts: &mut Counts,
) -> Result<(), String> {
    use gradc::driver::hessian;
    use gradc::eval::Backend;
    if hessian::labels(&c.ir).len() > 6 {
        return Ok(());
    }
    counts.hessians += 1;
    let interp = hessian::hessian(&c.ir, &c.source, params, inputs, Backend::Interp);
    let jit = hessian::hessian(&c.ir, &c.source, params, inputs, Backend::Jit);
    match (interp, jit) {
        (Ok(a), Ok(b)) => {
            let (x, y): (Vec<f64>, Vec<f64>) = (a.rows.concat(), b.rows.concat());
            if a.labels != b.labels
                || x.len() != y.len()
                || x.iter().zip(&y).any(|(p, q)| !same_bits(*p, *q))
            {
                return Err(format!("Hessians differ: interpreter {x:?}, JIT {y:?}"));
            }
            Ok(())
        }
        (Err(a), Err(b)) => {
            rendered(&a)?;
            let (a, b) = (a.render(false), b.render(false));
            if a != b {
                return Err(format!("Hessians fail differently:\n{a}\nthe JIT:\n{b}"));
            }
            Ok(())
        }
        (Ok(_), Err(e)) => Err(format!("only the JIT's Hessian fails: {}", e.render(false))),
        (Err(e), Ok(_)) => Err(format!(
            "only the interpreter's Hessian fails: {}",
            e.render(false)
        )),
    }
}

/// Whether running `f` would take more than milliseconds.
fn too_large(f: &Function) -> bool {
    let elements: usize = f.insts().iter().map(|i| i.shape.size()).sum();
    let slots: usize = f
        .params
        .iter()
        .chain(&f.inputs)
        .map(|s| s.shape.size())
        .sum();
    elements + slots > MAX_ELEMENTS || gradc::ir::stats::stats(f).flops > MAX_FLOPS
}

/// Every span of `diags` lies in `text` on character boundaries, and they
/// render, plain and in colour.
pub fn diagnostics_render(text: &str, diags: &[Diagnostic]) -> Result<(), String> {
    if diags.is_empty() {
        return Err("rejected without a diagnostic".into());
    }
    for d in diags {
        for s in std::iter::once(d.span).chain(d.labels.iter().map(|l| l.span)) {
            let (lo, hi) = (s.lo as usize, s.hi as usize);
            if lo > hi || hi > text.len() {
                return Err(format!(
                    "span {s} outside the source (length {}): {}",
                    text.len(),
                    d.message
                ));
            }
            if !text.is_char_boundary(lo) || !text.is_char_boundary(hi) {
                return Err(format!("span {s} splits a character: {}", d.message));
            }
        }
    }
    let source = Source::new("fuzz.grad", text);
    let e = Error::in_source(&source, diags.to_vec());
    rendered(&e)
}

/// `e` renders, plain and in colour, to something.
pub fn rendered(e: &Error) -> Result<(), String> {
    let plain = e.render(false);
    let _ = e.render(true);
    if plain.trim().is_empty() {
        return Err(format!("an error renders as nothing: {e:?}"));
    }
    Ok(())
}

/// A function ready on the three engines.
struct Engines {
    interp: Evaluator,
    per_example: Evaluator,
    batched: Evaluator,
}

impl Engines {
    fn new(f: &Function) -> Result<Engines, String> {
        let jit = |mode| {
            Evaluator::compile(f, mode).map_err(|e| format!("the backend refused ({mode:?}): {e}"))
        };
        Ok(Engines {
            interp: Evaluator::compile(f, Mode::Interp).map_err(|e| e.to_string())?,
            per_example: jit(Mode::PerExample)?,
            batched: jit(Mode::Batched)?,
        })
    }

    /// Runs every example on every engine, and the examples as one batch;
    /// `Ok(true)` when they all fault, the same way.
    fn compare(
        &self,
        params: &[Tensor],
        examples: &[Vec<Tensor>],
        source: &std::sync::Arc<Source>,
    ) -> Result<bool, String> {
        let mut want = Vec::with_capacity(examples.len());
        for (b, x) in examples.iter().enumerate() {
            let w = self.interp.outputs(params, x);
            for (engine, e) in [
                ("the JIT", &self.per_example),
                ("the batched JIT", &self.batched),
            ] {
                same_result(&w, &e.outputs(params, x))
                    .map_err(|m| format!("example {b}, {engine} against the interpreter: {m}"))?;
            }
            if let Err(e) = &w {
                rendered(&run_error(source, e))?;
            }
            want.push(w);
        }
        let Evaluator::Batched(batched) = &self.batched else {
            return Err("Mode::Batched gave another evaluator".into());
        };
        let f = batched.function();
        let n = examples.len();
        let rows: Vec<Vec<f64>> = (0..f.inputs.len())
            .map(|k| examples.iter().flat_map(|x| x[k].data.clone()).collect())
            .collect();
        let rows: Vec<&[f64]> = rows.iter().map(|r| &r[..]).collect();
        let got = batched.run(params, &rows, n);
        let expected = batch_expected(batched, &want, n);
        same_result(&expected, &got).map_err(|m| format!("a batch of {n}: {m}"))?;
        Ok(expected.is_err())
    }
}

/// What a batch of `n` examples must give, from the interpreter's results
/// for each: the first example's fault, or per-example outputs row after
/// row, and means summed in example order from -0 and divided by `n`.
fn batch_expected(
    batched: &gradc::backend::BatchedFunction,
    want: &[Result<Vec<Tensor>, RunError>],
    n: usize,
) -> Result<Vec<Tensor>, RunError> {
    let mut outs = Vec::with_capacity(n);
    for (b, w) in want.iter().enumerate() {
        match w {
            Ok(o) => outs.push(o),
            Err(e) => return Err(e.clone().in_example(Some(b))),
        }
    }
    Ok(batched
        .outputs()
        .iter()
        .enumerate()
        .map(|(k, o)| {
            let shape = batched.output_shape(k, n);
            let values = outs.iter().map(|x| &x[o.index].data);
            let data = match o.reduce {
                gradc::backend::Reduce::PerExample => values.flatten().copied().collect(),
                gradc::backend::Reduce::Mean => {
                    let mut acc = vec![-0.0; shape.size()];
                    for v in values {
                        for (a, x) in acc.iter_mut().zip(v) {
                            *a += x;
                        }
                    }
                    acc.iter().map(|a| a / n as f64).collect()
                }
            };
            Tensor::new(shape, data)
        })
        .collect())
}

/// The same bits, or both NaN.
pub fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Two engines' results agree: the same fault, or the same outputs bit for
/// bit (NaN payloads aside). `Err` describes the first difference.
pub fn same_result(
    want: &Result<Vec<Tensor>, RunError>,
    got: &Result<Vec<Tensor>, RunError>,
) -> Result<(), String> {
    match (want, got) {
        (Err(w), Err(g)) if w == g => Ok(()),
        (Err(w), Err(g)) => Err(format!("fault {w:?}, but {g:?}")),
        (Err(w), Ok(_)) => Err(format!("fault {w:?}, but it ran")),
        (Ok(_), Err(g)) => Err(format!("ran, but fault {g:?}")),
        (Ok(w), Ok(g)) => {
            if w.len() != g.len() {
                return Err(format!("{} outputs, but {}", w.len(), g.len()));
            }
            for (k, (w, g)) in w.iter().zip(g).enumerate() {
                if w.shape != g.shape {
                    return Err(format!("output {k}: shape {}, but {}", w.shape, g.shape));
                }
                for (j, (&x, &y)) in w.data.iter().zip(&g.data).enumerate() {
                    if !same_bits(x, y) {
                        return Err(format!(
                            "output {k}[{j}]: {x:e} ({:#x}), but {y:e} ({:#x})",
                            x.to_bits(),
                            y.to_bits()
                        ));
                    }
                }
            }
            Ok(())
        }
    }
}

/// A value: mostly normal, of varied scales; with `wild`, now and then a
/// number at the edge of a domain (0, -0, ±inf, NaN, huge, subnormal).
fn value(r: &mut R, wild: bool) -> f64 {
    const EDGES: [f64; 16] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        2.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e300,
        -1e300,
        1e-310,
        710.0,
        -746.0,
        f64::MAX,
        f64::MIN_POSITIVE,
    ];
    if wild && r.chance(0.2) {
        *r.pick(&EDGES)
    } else {
        r.normal() * [1.0, 1.0, 0.1, 10.0][r.below(4)]
    }
}

fn random_params(f: &Function, r: &mut R, wild: bool) -> Vec<Tensor> {
    f.params
        .iter()
        .map(|s| {
            let data = (0..s.shape.size()).map(|_| value(r, wild)).collect();
            Tensor::new(s.shape.clone(), data)
        })
        .collect()
}

/// Random inputs; an input that is a class (it feeds `one_hot`) is mostly a
/// class in range, and with `wild` now and then one out of range, not an
/// integer, or NaN.
fn random_inputs(f: &Function, r: &mut R, wild: bool) -> Vec<Tensor> {
    f.inputs
        .iter()
        .enumerate()
        .map(|(i, slot)| {
            let classes = f.insts().iter().find_map(|inst| match inst.op {
                Op::OneHot(n) => inst
                    .args
                    .iter()
                    .any(|a| f.inst(*a).op == Op::Input(i))
                    .then_some(n),
                _ => None,
            });
            let data = (0..slot.shape.size())
                .map(|_| match classes {
                    Some(n) if wild && r.chance(0.3) => {
                        *r.pick(&[n as f64, -1.0, 0.5, f64::NAN, 1e20])
                    }
                    Some(n) => r.below(n) as f64,
                    None => value(r, wild),
                })
                .collect();
            Tensor::new(slot.shape.clone(), data)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradc::shape::Shape;

    fn ok(xs: &[f64]) -> Result<Vec<Tensor>, RunError> {
        Ok(vec![Tensor::new(Shape::vector(xs.len()), xs.to_vec())])
    }

    /// The comparison flags one ulp, a zero's sign, another shape, a fault
    /// against a value; it lets NaN payloads differ.
    #[test]
    fn the_comparison_flags_different_results() {
        let x = 0.1f64;
        let next = f64::from_bits(x.to_bits() + 1);
        assert!(same_result(&ok(&[x, 2.0]), &ok(&[x, 2.0])).is_ok());
        assert!(same_result(&ok(&[x, 2.0]), &ok(&[next, 2.0])).is_err());
        assert!(same_result(&ok(&[0.0]), &ok(&[-0.0])).is_err());
        assert!(same_result(&ok(&[1.0]), &ok(&[1.0, 1.0])).is_err());
        let other_nan = f64::from_bits(f64::NAN.to_bits() | 1);
        assert!(same_result(&ok(&[f64::NAN]), &ok(&[other_nan])).is_ok());
        assert!(same_result(&ok(&[f64::NAN]), &ok(&[f64::INFINITY])).is_err());
        let misuse = Err(RunError::Misuse("x".into()));
        assert!(same_result(&misuse, &ok(&[1.0])).is_err());
        assert!(same_result(&ok(&[1.0]), &misuse).is_err());
        assert!(same_result(&misuse, &misuse.clone()).is_ok());
    }

    /// A real program checks out, and the engines' comparison sees a change
    /// in one example's expected value.
    #[test]
    fn the_pipeline_runs_a_program_and_a_tampered_batch_fails() {
        let src = "param w: [2] = [0.5, -1]\ninput x: [2]\ninput c\nlet z = dot(w, x)\n\
                   loss z^2 + cross_entropy([z, 1], c)\noutput p = sigmoid(z)\n";
        let mut counts = Counts::default();
        check_source(src.as_bytes(), &mut counts).unwrap();
        assert_eq!((counts.compiled, counts.gradients), (1, 1));
        assert_eq!(counts.runs, 6);

        let c = gradc::compile(src).unwrap();
        let g = c.gradient().unwrap();
        let engines = Engines::new(&g).unwrap();
        let params = c.initial_params(0);
        let x = vec![
            Tensor::new(Shape::vector(2), vec![1.0, 2.0]),
            Tensor::scalar(1.0),
        ];
        let Evaluator::Batched(b) = &engines.batched else {
            panic!()
        };
        let mut want = vec![engines.interp.outputs(&params, &x)];
        let expected = batch_expected(b, &want, 1);
        let got = b.run(&params, &[&x[0].data, &x[1].data], 1);
        same_result(&expected, &got).unwrap();
        if let Ok(outs) = &mut want[0] {
            outs[0].data[0] += 1e-9;
        }
        let tampered = batch_expected(b, &want, 1);
        assert!(same_result(&tampered, &got).is_err());
        // A class out of range faults on every engine, the same way.
        let bad = vec![x[0].clone(), Tensor::scalar(2.0)];
        assert!(engines.compare(&params, &[x, bad], &c.source).unwrap());
    }
}
