//! The JIT: the host ISA, one `JITModule` per compiled function, and
//! [`JitFunction`], the callable that checks every buffer before it enters
//! machine code and frees the code when it is dropped.

use std::fmt::Write as _;

use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module};

use super::abi::{self, check_lengths, EntryFn, Hidden, Scratch};
use super::libm::Callee;
use super::plan::layout;
use super::precompute::{self, Keeping, Kept};
use super::translate::single;
use super::workers::{self, Built, Split};
use crate::ir::{interp, verify, Function, RunError};
use crate::shape::Tensor;

/// Why the backend refused to compile a function. It happens before
/// anything runs and is about no place in the program: a tensor too large
/// to address (the checker's size limit keeps programs far below it), IR
/// that does not verify or a failure of Cranelift (both compiler bugs), or a
/// host Cranelift does not support. So it is a message, shown as
/// `cannot compile the program: ...` ([`crate::eval::compile_failed`]);
/// a failure of running the code is an [`RunError`] instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError(pub String);

impl From<String> for CompileError {
    fn from(message: String) -> CompileError {
        CompileError(message)
    }
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for CompileError {}

/// A function compiled to machine code for this host.
///
/// `run` and `run_into` take `&self` and may be called from several threads
/// at once, each with its own [`Scratch`].
pub struct JitFunction {
    /// The machine code's parts ([`Split`]), called one after the other;
    /// valid as long as `code` is.
    entries: Vec<EntryFn>,
    #[expect(dead_code, reason = "held for its Drop, which frees the code")]
    code: Code,
    /// The function compiled, as its callers see it (its constant loops of
    /// at most `precompute::MAX_ELEMENTS` numbers made constants).
    f: Function,
    /// Its larger constant loops ([`precompute::keep`]): the function the
    /// code was compiled from, which reads them as inputs after `f`'s, and
    /// their values.
    kept: Keeping,
    scratch_len: usize,
    /// How many pieces of loops' bodies the parts call.
    #[cfg_attr(not(test), expect(dead_code, reason = "counted for tests"))]
    pieces: usize,
}

/// Owns the `JITModule` that holds the code and the constant data, and frees
/// them on drop.
pub(super) struct Code(Option<JITModule>, OwnedTargetIsa);

impl Code {
    /// A new, empty module for the host (see [`new_module`]).
    pub(super) fn new() -> Result<Code, String> {
        let (module, isa) = new_module("speed")?;
        Ok(Code(Some(module), isa))
    }

    /// A module for code run once: compiled without Cranelift's
    /// optimisations, which cost more time than they save it (the same
    /// arithmetic, so the same bits).
    pub(super) fn once() -> Result<Code, String> {
        let (module, isa) = new_module("none")?;
        Ok(Code(Some(module), isa))
    }

    /// The module's ISA, which threads compiling for it share.
    pub(super) fn isa(&self) -> OwnedTargetIsa {
        self.1.clone()
    }

    /// The module, until the code is dropped.
    pub(super) fn module(&mut self) -> &mut JITModule {
        self.0.as_mut().expect("held until drop")
    }
}

// SAFETY: `JITModule` is `Send` but not `Sync` because of interior mutability
// (a `RefCell` of symbols) used while compiling. A `Code` is only touched
// through `&mut` (while compiling, and by `Drop`); it offers no `&self` access,
// so sharing a `&Code` between threads can reach none of that state.
unsafe impl Sync for Code {}

impl Drop for Code {
    fn drop(&mut self) {
        if let Some(module) = self.0.take() {
            // SAFETY: the only pointer into this module's memory is the
            // `entry` of the `JitFunction` or `BatchedFunction` that owns
            // this `Code` (or none, if compiling failed). It is private,
            // never copied out, and calls through it borrow its owner, so
            // none is running and none can happen after this drop.
            unsafe { module.free_memory() };
        }
    }
}

/// The host ISA at Cranelift's `opt_level` (`speed`, or `none` for code run
/// once), not PIC (the JIT does not support it),
/// with the native CPU features (AVX, FMA where present).
fn new_module(opt_level: &str) -> Result<(JITModule, OwnedTargetIsa), String> {
    let mut flags = settings::builder();
    let set = |flags: &mut settings::Builder, k: &str, v: &str| {
        flags
            .set(k, v)
            .map_err(|e| format!("cranelift setting {k}={v}: {e}"))
    };
    set(&mut flags, "opt_level", opt_level)?;
    set(&mut flags, "is_pic", "false")?;
    // The IR verifier is the translator's test oracle; release builds skip it.
    let verifier = if cfg!(debug_assertions) {
        "true"
    } else {
        "false"
    };
    set(&mut flags, "enable_verifier", verifier)?;
    let isa = cranelift_native::builder()
        .map_err(|e| format!("this host is not supported by Cranelift: {e}"))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| format!("cranelift ISA: {e}"))?;
    let mut builder = JITBuilder::with_isa(isa.clone(), cranelift_module::default_libcall_names());
    for c in Callee::ALL {
        if let Some((name, addr)) = c.host() {
            builder.symbol(name, addr);
        }
    }
    for (name, addr) in super::kernel::symbols() {
        builder.symbol(name, addr);
    }
    Ok((JITModule::new(builder), isa))
}

/// Verifies `f` and builds its CLIF in parts ([`single::translate`]),
/// declaring what they use in `module`; each part, and each function a
/// part calls, is handed to `emit` as it is built. Returns the length of
/// the scratch buffer the parts need.
fn build(
    module: &mut JITModule,
    f: &Function,
    split: Split,
    emit: &mut dyn FnMut(Built),
) -> Result<usize, String> {
    verify::verify(f).map_err(|e| format!("invalid IR: {e}"))?;
    check_sizes(f)?;
    let layout = layout::layout(f);
    let sig = abi::entry_signature(module);
    single::translate(module, f, &layout, &sig, split.insts, emit)
}

/// Compiles the function built in `ctx` as the module's entry, links it, and
/// returns the address of its code.
pub(super) fn define_entry(
    module: &mut JITModule,
    ctx: &mut cranelift_codegen::Context,
) -> Result<*const u8, String> {
    let id = module
        .declare_function("gradc_entry", Linkage::Export, &ctx.func.signature)
        .map_err(|e| format!("declaring the entry: {e}"))?;
    module
        .define_function(id, ctx)
        .map_err(|e| format!("cranelift could not compile the function: {e:?}"))?;
    module.clear_context(ctx);
    module
        .finalize_definitions()
        .map_err(|e| format!("cranelift could not link the function: {e}"))?;
    Ok(module.get_finalized_function(id))
}

/// Compiles `f` to machine code, its loops that read no parameter and no
/// input computed once ([`precompute`]): the small ones now, made
/// constants, the others at the first call. In parts on several threads
/// if the process allows them ([`Split::of_process`]).
pub fn compile(f: &Function) -> Result<JitFunction, CompileError> {
    compile_with(f, Split::of_process())
}

/// [`compile`], built and compiled as `split` says.
pub(crate) fn compile_with(f: &Function, split: Split) -> Result<JitFunction, CompileError> {
    let folded = precompute::fold(f);
    let f = folded.as_ref().unwrap_or(f);
    compile_into(Code::new()?, f, precompute::keep(f, Hidden::Inputs), split)
}

/// `f` compiled in parts of one step each on the threads the process
/// allows, if more than one, and thrown away: those threads started and
/// their first allocations made, as a large program compiled in parts
/// later finds them (`gradc gradbench`'s warm-up).
pub fn warm_up_parts(f: &Function) -> Result<(), CompileError> {
    let threads = super::kernel::threads();
    if threads > 1 {
        compile_with(f, Split { insts: 1, threads })?;
    }
    Ok(())
}

/// `f` compiled as it is for one run ([`precompute`]): without Cranelift's
/// optimisations, which cost more time than they save it, unless `long`.
pub(super) fn compile_for_constants(f: &Function, long: bool) -> Result<JitFunction, CompileError> {
    let code = if long { Code::new()? } else { Code::once()? };
    compile_into(code, f, None, Split::of_process())
}

/// `f` compiled into `code` as `split` says; from `kept`'s function if
/// given, `f` with its large constant loops read from hidden inputs.
fn compile_into(
    mut code: Code,
    f: &Function,
    kept: Option<(Function, Kept)>,
    split: Split,
) -> Result<JitFunction, CompileError> {
    let isa = code.isa();
    let module = code.module();
    let kept = Keeping::new(f, kept);
    let (parts, scratch_len) = workers::compiled(split, &*isa, |emit| {
        build(module, kept.compiled(f), split, emit)
    })?;
    let pieces = parts.iter().filter(|(callee, _)| callee.is_some()).count();
    let entries = workers::define(module, &parts)?;
    let entries = entries
        .into_iter()
        .map(|ptr| {
            // SAFETY: `ptr` is the finalized code of a function defined with
            // `abi::entry_signature`, which is `EntryFn` under the module's
            // default call convention, that of `extern "C"` on this host.
            unsafe { std::mem::transmute::<*const u8, EntryFn>(ptr) }
        })
        .collect();
    Ok(JitFunction {
        entries,
        code,
        f: f.clone(),
        kept,
        scratch_len,
        pieces,
    })
}

/// The Cranelift IR of `f`, as the translator emits it (before Cranelift's
/// optimisations), with the names of the host functions and data it uses:
/// its parts one after the other if the process cuts it ([`Split`]).
pub fn clif_text(f: &Function) -> Result<String, CompileError> {
    let folded = precompute::fold(f);
    let f = folded.as_ref().unwrap_or(f);
    let kept = Keeping::new(f, precompute::keep(f, Hidden::Inputs));
    let mut code = Code::new()?;
    let module = code.module();
    let mut parts = Vec::new();
    build(
        module,
        kept.compiled(f),
        Split::of_process(),
        &mut |built| {
            parts.push(match built {
                Built::Part(func, _) | Built::Callee(_, func) => func,
            })
        },
    )?;
    let mut out = String::new();
    for (id, decl) in module.declarations().get_functions() {
        let _ = writeln!(
            out,
            "; u0:{} = {}",
            id.as_u32(),
            decl.name.as_deref().unwrap_or("?")
        );
    }
    for (id, decl) in module.declarations().get_data_objects() {
        let _ = writeln!(
            out,
            "; u1:{} = {}",
            id.as_u32(),
            decl.name.as_deref().unwrap_or("?")
        );
    }
    for func in &parts {
        let _ = write!(out, "{}", func.display());
    }
    Ok(out)
}

impl JitFunction {
    /// The function this was compiled from.
    pub fn function(&self) -> &Function {
        &self.f
    }

    /// A scratch buffer for [`Self::run_into`], to be reused across calls.
    pub fn scratch(&self) -> Scratch {
        let f = self.compiled();
        Scratch::new(
            self.scratch_len,
            f.params.len() + f.inputs.len() + f.outputs.len(),
        )
    }

    /// Runs on one example and returns the outputs in `Function::outputs`
    /// order. Checks every shape first, with the interpreter's messages; a
    /// `one_hot` with a bad class is the interpreter's
    /// [`RunError::Fault`].
    pub fn run(&self, params: &[Tensor], inputs: &[Tensor]) -> Result<Vec<Tensor>, RunError> {
        interp::check_slots("parameter", &self.f.params, params)?;
        interp::check_slots("input", &self.f.inputs, inputs)?;
        let mut outs: Vec<Tensor> = self
            .f
            .outputs
            .iter()
            .map(|o| Tensor::zeros(self.f.shape(o.value).clone()))
            .collect();
        let p: Vec<&[f64]> = params.iter().map(|t| &t.data[..]).collect();
        let i: Vec<&[f64]> = inputs.iter().map(|t| &t.data[..]).collect();
        let mut o: Vec<&mut [f64]> = outs.iter_mut().map(|t| &mut t.data[..]).collect();
        self.run_into(&mut self.scratch(), &p, &i, &mut o)?;
        Ok(outs)
    }

    /// Runs on one example, writing the k-th output into `outputs[k]`
    /// (row-major). Allocates nothing. Every buffer's length is checked
    /// against its shape, and `scratch` against this function, before the
    /// machine code runs (a [`RunError::Misuse`] if one does not fit).
    pub fn run_into(
        &self,
        scratch: &mut Scratch,
        params: &[&[f64]],
        inputs: &[&[f64]],
        outputs: &mut [&mut [f64]],
    ) -> Result<(), RunError> {
        let f = &self.f;
        check_lengths("parameter", &f.params, params.iter().map(|p| p.len()))?;
        check_lengths("input", &f.inputs, inputs.iter().map(|p| p.len()))?;
        if outputs.len() != f.outputs.len() {
            return Err(RunError::Misuse(format!(
                "expected {} output buffers, got {}",
                f.outputs.len(),
                outputs.len()
            )));
        }
        for (o, buf) in f.outputs.iter().zip(outputs.iter()) {
            let shape = f.shape(o.value);
            if buf.len() != shape.size() {
                return Err(RunError::Misuse(format!(
                    "output {} has shape {shape} ({} numbers) but its buffer holds {}",
                    o.name,
                    shape.size(),
                    buf.len()
                )));
            }
        }
        let kept = self.kept.values()?;
        let t = scratch.bind(
            self.scratch_len,
            (params, inputs),
            (kept, Hidden::Inputs),
            outputs,
        )?;
        // The parts run in order, each the next steps of the function; a
        // part that fails returns its status at once.
        let mut status = 0;
        for entry in &self.entries {
            // SAFETY: the code was compiled from `self.compiled()` and is
            // alive (owned by `self.code`). The tables, filled by
            // `Scratch::bind` above, hold exactly one pointer per parameter,
            // input and output of `self.compiled()`, each to a live buffer
            // of exactly its shape's size (checked above: `self.f`'s inputs,
            // then the kept values, computed by the function of their
            // shapes; the scratch checked by `bind`), the kept values held
            // by `self` for the call; the generated code reads no further
            // than those sizes, writes only the output buffers and the
            // scratch buffer, which holds `scratch_len` numbers as the
            // layout it was compiled with and the slots its parts pass
            // scalars through require. Parameters and inputs are only read,
            // and the `&mut` outputs cannot alias them. The tables and
            // buffers are borrowed for the whole call.
            status = unsafe { entry(t.params, t.inputs, t.outputs, t.scratch) };
            if status != 0 {
                break;
            }
        }
        scratch.status_result(self.compiled(), status)
    }

    /// The function the code was compiled from: `self.f`, or `self.f` with
    /// its large constant loops read from hidden inputs.
    fn compiled(&self) -> &Function {
        self.kept.compiled(&self.f)
    }

    /// How many functions its code is in ([`Split`]), called one after the
    /// other.
    #[cfg(test)]
    pub(crate) fn parts(&self) -> usize {
        self.entries.len()
    }

    /// How many pieces of loops' bodies its parts call (`translate::
    /// body_parts`).
    #[cfg(test)]
    pub(crate) fn pieces(&self) -> usize {
        self.pieces
    }

    /// How many constant loops this function computes at its first call and
    /// then holds ([`precompute::keep`]).
    pub fn kept_loops(&self) -> usize {
        self.kept.loops()
    }
}

/// The most numbers all the values of a function may hold together, so that
/// every element offset, stride and byte offset fits in an `isize`.
const MAX_ELEMENTS: usize = isize::MAX as usize / 16;

/// Rejects functions whose tensors are too large to address: every shape's
/// size (and, since strides skip zero-length axes, the product of its nonzero
/// dimensions) and the sum of all of them must stay within [`MAX_ELEMENTS`].
pub(super) fn check_sizes(f: &Function) -> Result<(), String> {
    let shapes = f.params.iter().chain(&f.inputs).map(|s| &s.shape);
    let mut total: usize = 0;
    for shape in shapes.chain(f.insts().iter().map(|i| &i.shape)) {
        let size = shape
            .dims()
            .iter()
            .filter(|&&d| d != 0)
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= MAX_ELEMENTS);
        total = size
            .and_then(|n| total.checked_add(n))
            .filter(|&t| t <= MAX_ELEMENTS)
            .ok_or_else(|| format!("tensors of shape {shape} are too large to compile"))?;
    }
    Ok(())
}
