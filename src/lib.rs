//! gradc: a compiler and runtime for a small language of losses and models.
//!
//! The pipeline: source text -> [`syntax`] (tokens, syntax tree) -> [`types`]
//! (names resolved, shapes checked) -> [`lower`] (SSA [`ir`]) -> [`passes`]
//! (simplification) -> [`autodiff`] (the gradient program) -> evaluation by
//! [`ir::interp`] or the [`backend`]'s JIT ([`eval`]) -> training
//! ([`runtime`]). The [`driver`] is what the command line ([`cli`]) and the
//! REPL ([`repl`]) share; every error a user can cause is a
//! [`diagnostic::Error`].
//!
//! ```
//! let src = "param x = -3\nloss x^2\n";
//! let compiled = gradc::compile(src).unwrap();
//! let params = compiled.initial_params(0);
//! let out = gradc::ir::interp::run_outputs(&compiled.ir, &params, &[]).unwrap();
//! assert_eq!(out[0].1.item(), 9.0);
//! ```

/// `println!` for the CLI and the REPL, which ignores a closed standard output
/// (`gradc predict ... | head`) instead of panicking; the work goes on (a run
/// still saves its weights).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The global allocator of the `gradc` binary and of the benches that time
/// what it does (`#[global_allocator] static A: gradc::Allocator =
/// gradc::Allocator;`): mimalloc. The compiler makes and drops many small
/// objects, Cranelift's above all; with glibc's malloc, allocating, freeing
/// and consolidating took a fifth of a large program's compilation. Built
/// without transparent huge pages (`Cargo.toml`).
pub use mimalloc::MiMalloc as Allocator;

/// `print!` that ignores a closed standard output, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

pub mod autodiff;
pub mod backend;
pub mod cli;
pub mod diagnostic;
pub mod driver;
pub mod dtype;
pub mod eval;
pub mod gradbench;
pub mod ir;
pub mod lower;
pub mod passes;
pub mod repl;
pub mod runtime;
pub mod shape;
pub mod span;
pub mod syntax;
pub mod types;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use std::sync::Arc;

use diagnostic::{Diagnostic, Error, Source};
use shape::Tensor;
use span::Span;

/// Everything the front end produces for one source file.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The source it was compiled from, which errors point into.
    pub source: Arc<Source>,
    pub typed: types::Program,
    /// The IR as lowered, before simplification.
    pub raw: ir::Function,
    /// The simplified IR.
    pub ir: ir::Function,
    /// The gradient program of `ir`, built on first use.
    gradient: std::sync::OnceLock<Result<ir::Function, Diagnostic>>,
}

impl Compiled {
    /// The parameters' initial values, drawn in declaration order from one
    /// generator seeded with `seed`.
    pub fn initial_params(&self, seed: u64) -> Vec<Tensor> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        self.typed
            .params
            .iter()
            .map(|p| p.init.sample(&p.shape, &mut rng))
            .collect()
    }

    /// The simplified gradient program of [`Self::ir`]: the loss, metrics and
    /// outputs, and the gradient of the loss with respect to every
    /// parameter. Built by [`gradient_program`] on the first call, then
    /// kept (each call gives a copy): `gradc grad`, `check`, `clif` and
    /// training share it.
    pub fn gradient(&self) -> Result<ir::Function, Diagnostic> {
        let checkpoint = self.typed.train.as_ref().and_then(|t| t.checkpoint);
        self.gradient
            .get_or_init(|| gradient_program_with(&self.ir, checkpoint))
            .clone()
    }

    /// The seed of the `train` block, or 0.
    pub fn seed(&self) -> u64 {
        self.typed.train.as_ref().map_or(0, |t| t.seed)
    }
}

/// The simplified gradient program of `f` (its loss differentiated with
/// respect to every parameter, its other outputs kept): the one place the
/// gradient program is built. An operation that cannot be differentiated
/// where it is used is a diagnostic at its span.
pub fn gradient_program(f: &ir::Function) -> Result<ir::Function, Diagnostic> {
    gradient_program_with(f, None)
}

/// [`gradient_program`], with the loops of more than `checkpoint` steps
/// differentiated in segments of that many (see [`autodiff::checkpoint`]).
pub fn gradient_program_with(
    f: &ir::Function,
    checkpoint: Option<usize>,
) -> Result<ir::Function, Diagnostic> {
    let mut f = f.clone();
    if let Some(every) = checkpoint {
        autodiff::checkpoint::split(&mut f, every);
    }
    let mut g = autodiff::grad(&f)
        .map_err(|e| Diagnostic::error(e.span, e.message.clone()).label(e.span, "here"))?;
    passes::simplify(&mut g);
    Ok(g)
}

/// Source bytes as text; invalid UTF-8 is an error at the first bad byte.
pub fn source_text(bytes: &[u8]) -> Result<&str, Diagnostic> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let span = Span::new(at, at + e.error_len().unwrap_or(1));
        Diagnostic::error(span, "the file is not valid UTF-8")
            .label(span, "this byte does not belong to a UTF-8 character")
            .hint("save the file as UTF-8")
    })
}

/// Source bytes for showing in a diagnostic: every byte that is not part of a
/// UTF-8 character becomes one `?`, so byte spans still line up.
pub fn printable_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(std::iter::repeat_n('?', chunk.invalid().len()));
    }
    out
}

/// Parses a source file into its syntax tree.
pub fn parse(src: &str) -> Result<syntax::ast::Program, Vec<Diagnostic>> {
    syntax::parser::parse(src)
}

/// Parses and checks a source file.
pub fn check(src: &str, opts: &types::CheckOptions) -> Result<types::Program, Vec<Diagnostic>> {
    let ast = parse(src)?;
    types::check(&ast, opts)
}

/// The whole front end: parse, check, lower and simplify.
pub fn compile(src: &str) -> Result<Compiled, Vec<Diagnostic>> {
    compile_with(src, &types::CheckOptions::default())
}

/// [`compile`], with options. The source is named `<source>` in errors
/// the runtime reports; [`compile_source`] names it.
pub fn compile_with(src: &str, opts: &types::CheckOptions) -> Result<Compiled, Vec<Diagnostic>> {
    compile_in(Source::new("<source>", src), opts)
}

/// The whole front end on a named source; the diagnostics as an [`Error`]
/// in that source.
pub fn compile_source(source: &Arc<Source>, opts: &types::CheckOptions) -> Result<Compiled, Error> {
    compile_in(source.clone(), opts).map_err(|d| Error::in_source(source, d))
}

fn compile_in(
    source: Arc<Source>,
    opts: &types::CheckOptions,
) -> Result<Compiled, Vec<Diagnostic>> {
    let typed = check(&source.text, opts)?;
    let raw = lower::lower(&typed)?;
    let mut ir = raw.clone();
    passes::simplify(&mut ir);
    Ok(Compiled {
        source,
        typed,
        raw,
        ir,
        gradient: std::sync::OnceLock::new(),
    })
}
