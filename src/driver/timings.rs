//! `gradc grad --timings`: the compile time of a program stage by stage,
//! from its source text to the machine code of its forward and gradient
//! functions. Each stage is run once more, on its own, after the program
//! has compiled (so its errors are reported the usual way first).

use std::time::{Duration, Instant};

use crate::diagnostic::Error;
use crate::eval::compile_failed;
use crate::types::CheckOptions;
use crate::Compiled;

/// One stage of the compiler and how long it took.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub name: &'static str,
    pub time: Duration,
}

/// The stages, in the order the compiler runs them: parse, check, lower,
/// simplify, autodiff, simplify (of the gradient program), and the JIT of
/// the forward function, of the gradient function, and of the gradient
/// function over a mini-batch (as training runs it).
pub fn stages(c: &Compiled, opts: &CheckOptions) -> Result<Vec<Stage>, Error> {
    let in_source = |d| Error::in_source(&c.source, d);
    let mut out = Vec::new();
    let mut time = |name, start: Instant| {
        out.push(Stage {
            name,
            time: start.elapsed(),
        })
    };
    let start = Instant::now();
    let ast = crate::parse(&c.source.text).map_err(in_source)?;
    time("parse", start);
    let start = Instant::now();
    let typed = crate::types::check(&ast, opts).map_err(in_source)?;
    time("check", start);
    let start = Instant::now();
    let mut f = crate::lower::lower(&typed).map_err(in_source)?;
    time("lower", start);
    let start = Instant::now();
    crate::passes::simplify(&mut f);
    time("simplify", start);
    let start = Instant::now();
    let mut g = f.clone();
    if let Some(every) = typed.train.as_ref().and_then(|t| t.checkpoint) {
        crate::autodiff::checkpoint::split(&mut g, every);
    }
    let mut g = crate::autodiff::grad(&g)
        .map_err(|e| Error::new(format!("cannot differentiate: {}", e.message)))?;
    time("autodiff", start);
    let start = Instant::now();
    crate::passes::simplify(&mut g);
    time("simplify gradient", start);
    let start = Instant::now();
    crate::backend::compile(&f).map_err(compile_failed)?;
    time("jit forward", start);
    let start = Instant::now();
    crate::backend::compile(&g).map_err(compile_failed)?;
    time("jit gradient", start);
    let start = Instant::now();
    crate::backend::compile_batched(&g).map_err(compile_failed)?;
    time("jit gradient, batched", start);
    Ok(out)
}
