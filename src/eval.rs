//! Evaluation of an IR function at a point, on either backend: the Cranelift
//! JIT (the default) or the reference interpreter (`--backend interp`).

use crate::backend::{self, JitFunction};
use crate::ir::{interp, Function, Role};
use crate::shape::Tensor;

/// Which engine evaluates programs.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Native code compiled with Cranelift.
    #[default]
    Jit,
    /// The reference interpreter, in plain f64 Rust: slow, obviously correct.
    Interp,
}

/// A function ready to evaluate on one backend.
pub enum Evaluator {
    Interp(Function),
    Jit(Box<JitFunction>),
}

impl Evaluator {
    pub fn new(f: &Function, backend: Backend) -> Result<Evaluator, String> {
        Ok(match backend {
            Backend::Interp => Evaluator::Interp(f.clone()),
            Backend::Jit => Evaluator::Jit(Box::new(backend::compile(f)?)),
        })
    }

    pub fn function(&self) -> &Function {
        match self {
            Evaluator::Interp(f) => f,
            Evaluator::Jit(j) => j.function(),
        }
    }

    /// The outputs of the function, in `function().outputs` order.
    pub fn outputs(&self, params: &[Tensor], inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
        match self {
            Evaluator::Interp(f) => Ok(interp::run_outputs(f, params, inputs)?
                .into_iter()
                .map(|(_, t)| t)
                .collect()),
            Evaluator::Jit(j) => j.run(params, inputs),
        }
    }

    /// The output in the given role.
    pub fn output(
        &self,
        role: &Role,
        params: &[Tensor],
        inputs: &[Tensor],
    ) -> Result<Tensor, String> {
        let k = self
            .function()
            .outputs
            .iter()
            .position(|o| &o.role == role)
            .ok_or_else(|| format!("the program has no {role:?} output"))?;
        Ok(self.outputs(params, inputs)?.swap_remove(k))
    }
}
