//! The driver: the one library layer the CLI and the REPL both call for
//! everything that is not reading input or printing. Each thing is done one
//! way, here, so that `gradc check` and the REPL's `:check` check the same
//! points, `gradc grad --hessian` and `:hessian` have one size limit, and
//! both train, evaluate and report errors alike.
//!
//! It is called the driver (as a compiler's driver is the layer that runs
//! its stages for its front-ends) rather than a session, because the REPL's
//! [`crate::repl::session::Session`] is the REPL's own state: its
//! definitions and current values, which this layer knows nothing about.
//!
//! - [`mod@point`]: where values come from: `NAME=VALUES` inputs, seeded
//!   random inputs, initial or saved parameters.
//! - [`check`]: reverse mode against central differences at several points.
//! - [`mod@hessian`]: Hessians, with their one size limit.
//! - [`mod@dims`]: sizes from `--dim D=N` and `:dim D=N`, parsed once; a
//!   file compiled with them.
//! - [`config`]: a train block with overrides (`--epochs`, `--lr`,
//!   `--optimizer`, `--data`, ...).
//! - [`timings`]: the compile time of each stage (`gradc grad --timings`).
//! - here: reading and compiling a file, evaluating a function or its
//!   gradient at a point on either backend.
//!
//! Errors are [`Error`]s, rendered by [`Error::render`]; nothing here
//! prints.

pub mod check;
pub mod config;
pub mod dims;
pub mod hessian;
pub mod jacobian;
pub mod point;
pub mod timings;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::{io_reason, Error, Source};
use crate::eval::{compile_failed, run_error, Backend, Evaluator};
use crate::ir::Function;
use crate::shape::Tensor;
use crate::types::CheckOptions;
use crate::Compiled;

pub use check::{check_gradients, CheckReport, CheckSettings};
pub use config::{train_config, Overrides};
pub use dims::{load_with_dims, parse_dims};
pub use hessian::{hessian, Hessian, MAX_HESSIAN};
pub use point::{Missing, Point};

/// A .grad file as a source named by its path. A byte that is not UTF-8 is
/// an error located in the file (shown with such bytes as `?`).
pub fn read_source(path: &Path) -> Result<Arc<Source>, Error> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| Error::new(format!("cannot read `{name}`: {}", io_reason(&e))))?;
    match crate::source_text(&bytes) {
        Ok(text) => Ok(Source::new(name, text)),
        Err(d) => Err(Error::in_source(
            &Source::new(name, crate::printable_text(&bytes)),
            vec![d],
        )),
    }
}

/// Reads and compiles a .grad file.
pub fn load(path: &Path) -> Result<Compiled, Error> {
    let source = read_source(path)?;
    crate::compile_source(&source, &CheckOptions::default())
}

/// The directory the data paths of `file`'s train block are relative to.
pub fn base_dir(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The outputs of `f` (compiled from `source`) at a point, in `f.outputs`
/// order, on `backend`. A fault of the program is placed in `source`.
pub fn evaluate(
    f: &Function,
    source: &Arc<Source>,
    backend: Backend,
    params: &[Tensor],
    inputs: &[Tensor],
) -> Result<Vec<Tensor>, Error> {
    let e = Evaluator::new(f, backend).map_err(compile_failed)?;
    e.outputs(params, inputs).map_err(|e| run_error(source, &e))
}

/// The loss and every parameter's gradient of a gradient program `g`
/// (compiled from `source`) at a point, on `backend`.
pub fn gradients(
    g: &Function,
    source: &Arc<Source>,
    backend: Backend,
    params: &[Tensor],
    inputs: &[Tensor],
) -> Result<(f64, Vec<Tensor>), Error> {
    let e = Evaluator::new(g, backend).map_err(compile_failed)?;
    crate::autodiff::check::gradients_with(&e, params, inputs).map_err(|e| run_error(source, &e))
}

/// If one of `outputs` (the results of `f` at a point, in output order) is
/// not finite: where its first NaN or infinity comes from, as a warning
/// (the values were computed and are printed; see
/// [`crate::ir::nonfinite`]). The checked re-run is the interpreter's.
pub fn non_finite(
    f: &Function,
    source: &Arc<Source>,
    params: &[Tensor],
    inputs: &[Tensor],
    outputs: &[&Tensor],
) -> Option<Error> {
    if outputs.iter().all(|t| t.data.iter().all(|x| x.is_finite())) {
        return None;
    }
    let e = crate::eval::trace_non_finite(f, source, params, inputs, |_| true, |o| o.headline())?;
    Some(e.warning())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluating, differentiating, checking and the Hessian, on either
    /// backend, all place a bad class at the `cross_entropy` that takes it.
    #[test]
    fn a_fault_is_located_in_the_file() {
        let source = Source::new(
            "m.grad",
            "input x: [2]\ninput y\nparam W: [3, 2] = zeros\n\nloss cross_entropy(W @ x, y)\n",
        );
        let c = crate::compile_source(&source, &CheckOptions::default()).unwrap();
        let g = c.gradient().unwrap();
        let params = c.initial_params(0);
        let inputs = [
            Tensor::zeros(c.ir.inputs[0].shape.clone()),
            Tensor::scalar(7.0),
        ];
        let want = "m.grad:5:6: class index 7 is out of range for 3 classes (0 to 2)";
        for backend in [Backend::Jit, Backend::Interp] {
            let settings = CheckSettings {
                backend,
                ..CheckSettings::default()
            };
            let errors = [
                evaluate(&c.ir, &source, backend, &params, &inputs).unwrap_err(),
                gradients(&g, &source, backend, &params, &inputs).unwrap_err(),
                hessian(&c.ir, &source, &params, &inputs, backend).unwrap_err(),
                check_gradients(&c.ir, &g, &source, &params, &inputs, &settings).unwrap_err(),
            ];
            for e in errors {
                assert_eq!(e.to_string(), want, "{backend:?}");
            }
        }
    }
}
