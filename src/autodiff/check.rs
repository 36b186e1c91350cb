//! Gradient checking: reverse-mode gradients against central finite
//! differences, both evaluated by the reference interpreter in f64 (or, in
//! the `_with` forms, by any [`Evaluator`]). Errors are the engine's
//! [`RunError`]s.

use crate::eval::Evaluator;
use crate::ir::{Function, Role, RunError};
use crate::shape::Tensor;

/// Step of the central differences.
pub const EPS: f64 = 1e-6;

/// The comparison for one parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamCheck {
    pub name: String,
    /// The largest relative error over the parameter's elements:
    /// |analytic - numeric| / max(1, |analytic|, |numeric|).
    pub max_rel_error: f64,
    /// The element where it occurs (row-major index).
    pub worst: usize,
    pub analytic: f64,
    pub numeric: f64,
}

/// The loss of `f` at the given parameters, by the interpreter.
pub fn loss(f: &Function, params: &[Tensor], inputs: &[Tensor]) -> Result<f64, RunError> {
    loss_with(&Evaluator::Interp(f.clone()), params, inputs)
}

/// The loss at the given parameters, on any backend.
pub fn loss_with(f: &Evaluator, params: &[Tensor], inputs: &[Tensor]) -> Result<f64, RunError> {
    Ok(f.output(&Role::Loss, params, inputs)?.item())
}

/// The loss and the gradients of a gradient program (from `autodiff::grad`),
/// by the interpreter.
pub fn gradients(
    g: &Function,
    params: &[Tensor],
    inputs: &[Tensor],
) -> Result<(f64, Vec<Tensor>), RunError> {
    gradients_with(&Evaluator::Interp(g.clone()), params, inputs)
}

/// The loss and the gradients of a gradient program, on any backend.
pub fn gradients_with(
    g: &Evaluator,
    params: &[Tensor],
    inputs: &[Tensor],
) -> Result<(f64, Vec<Tensor>), RunError> {
    let f = g.function();
    let mut outs: Vec<Option<Tensor>> = g.outputs(params, inputs)?.into_iter().map(Some).collect();
    let mut take = |role: &Role| {
        f.outputs
            .iter()
            .position(|o| &o.role == role)
            .and_then(|k| outs[k].take())
            .ok_or_else(|| RunError::Misuse(format!("the program has no {role:?} output")))
    };
    let loss = take(&Role::Loss)?.item();
    let grads = (0..params.len())
        .map(|p| take(&Role::Grad(p)))
        .collect::<Result<Vec<_>, RunError>>()?;
    Ok((loss, grads))
}

/// Central differences of the loss of `f` for every element of every
/// parameter, by the interpreter.
pub fn numeric_gradients(
    f: &Function,
    params: &[Tensor],
    inputs: &[Tensor],
) -> Result<Vec<Tensor>, RunError> {
    numeric_gradients_with(&Evaluator::Interp(f.clone()), params, inputs)
}

/// Central differences of the loss, on any backend.
pub fn numeric_gradients_with(
    f: &Evaluator,
    params: &[Tensor],
    inputs: &[Tensor],
) -> Result<Vec<Tensor>, RunError> {
    let mut work = params.to_vec();
    let mut out = Vec::with_capacity(params.len());
    for p in 0..params.len() {
        let mut grad = Tensor::zeros(params[p].shape.clone());
        for k in 0..params[p].data.len() {
            let x = params[p].data[k];
            work[p].data[k] = x + EPS;
            let up = loss_with(f, &work, inputs)?;
            work[p].data[k] = x - EPS;
            let down = loss_with(f, &work, inputs)?;
            work[p].data[k] = x;
            grad.data[k] = (up - down) / (2.0 * EPS);
        }
        out.push(grad);
    }
    Ok(out)
}

/// Compares the gradient program `g` of `f` with finite differences of `f`,
/// by the interpreter.
pub fn check(
    f: &Function,
    g: &Function,
    params: &[Tensor],
    inputs: &[Tensor],
) -> Result<Vec<ParamCheck>, RunError> {
    check_with(
        &Evaluator::Interp(f.clone()),
        &Evaluator::Interp(g.clone()),
        params,
        inputs,
    )
}

/// Compares a gradient program with finite differences of its forward
/// program, on any backend.
pub fn check_with(
    f: &Evaluator,
    g: &Evaluator,
    params: &[Tensor],
    inputs: &[Tensor],
) -> Result<Vec<ParamCheck>, RunError> {
    let (_, analytic) = gradients_with(g, params, inputs)?;
    let numeric = numeric_gradients_with(f, params, inputs)?;
    Ok(f.function()
        .params
        .iter()
        .zip(analytic.iter().zip(&numeric))
        .map(|(slot, (a, n))| {
            let mut worst = ParamCheck {
                name: slot.name.clone(),
                max_rel_error: 0.0,
                worst: 0,
                analytic: a.data.first().copied().unwrap_or(0.0),
                numeric: n.data.first().copied().unwrap_or(0.0),
            };
            for (k, (&x, &y)) in a.data.iter().zip(&n.data).enumerate() {
                let err = relative_error(x, y);
                if err > worst.max_rel_error || err.is_nan() {
                    worst = ParamCheck {
                        name: slot.name.clone(),
                        max_rel_error: err,
                        worst: k,
                        analytic: x,
                        numeric: y,
                    };
                }
            }
            worst
        })
        .collect())
}

/// |a - b| / max(1, |a|, |b|): relative for large values, absolute near zero.
/// NaN when either is not finite and they differ.
pub fn relative_error(a: f64, b: f64) -> f64 {
    if a == b {
        return 0.0;
    }
    if !a.is_finite() || !b.is_finite() {
        return f64::NAN;
    }
    (a - b).abs() / 1f64.max(a.abs()).max(b.abs())
}

/// Random inputs for checking: a class index drawn uniformly where an input
/// feeds `one_hot` directly (as `cross_entropy` does), or is the index of an
/// `index` (a gather, `logits[y]`); else standard normal.
pub fn random_inputs(f: &Function, rng: &mut impl rand::Rng) -> Vec<Tensor> {
    use crate::ir::Op;
    use rand::RngExt;
    use rand_distr::StandardNormal;
    f.inputs
        .iter()
        .enumerate()
        .map(|(i, slot)| {
            let is_input = |v: crate::ir::Value| f.inst(v).op == Op::Input(i);
            let classes = f.insts().iter().find_map(|inst| match inst.op {
                Op::OneHot(n) => inst.args.iter().any(|a| is_input(*a)).then_some(n),
                Op::Index | Op::Gather if is_input(inst.args[1]) => {
                    f.shape(inst.args[0]).dims().first().copied()
                }
                _ => None,
            });
            let data = (0..slot.shape.size())
                .map(|_| match classes {
                    Some(n) => rng.random_range(0..n) as f64,
                    None => rng.sample(StandardNormal),
                })
                .collect();
            Tensor::new(slot.shape.clone(), data)
        })
        .collect()
}
