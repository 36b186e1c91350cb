//! A function of one example compiled on several threads: the translator
//! builds it in parts (the backend's `translate::single`), and a large
//! loop's body in functions of its own that a part calls (`translate::
//! body_parts`); each is compiled by Cranelift as soon as it is built, by a
//! task of rayon's global pool, while the translator builds the next; they
//! are then defined in the module, the parts in order. Cranelift's register
//! allocation and optimisation are most of a large program's compile time,
//! and they work on one function at a time.
//!
//! A part's machine code does not depend on the thread that compiled it,
//! nor on the parts compiled beside it: the same split gives the same code.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::Function as ClifFunction;
use cranelift_codegen::isa::TargetIsa;
use cranelift_codegen::Context;
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Module, ModuleReloc};

use super::kernel;

/// How a function of one example is built and compiled: in parts of at
/// least `insts` Cranelift instructions (the last may have fewer), by up
/// to `threads` threads at once, the one building them among them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Split {
    pub insts: usize,
    pub threads: usize,
}

/// The Cranelift instructions a part reaches before it ends, when the
/// process allows more than one thread: `ba`'s Jacobian (3,565) is then
/// six parts, `gmm`'s and `lstm`'s (about 2,300) four; a program of fewer
/// is one.
pub(crate) const PART_INSTS: usize = 600;

impl Split {
    /// One part, compiled on the calling thread.
    pub(crate) const WHOLE: Split = Split {
        insts: usize::MAX,
        threads: 1,
    };

    /// In parts of [`PART_INSTS`] on as many threads as the process allows
    /// ([`kernel::set_threads`]), whole if it allows one.
    pub(crate) fn of_process() -> Split {
        let threads = kernel::threads();
        if threads > 1 {
            Split {
                insts: PART_INSTS,
                threads,
            }
        } else {
            Split::WHOLE
        }
    }
}

/// A function the translator built.
pub(crate) enum Built {
    /// A part of the function of one example, which the caller calls after
    /// the parts before it, and whether more parts follow.
    Part(ClifFunction, bool),
    /// A function a part calls (a piece of a loop's body), declared in the
    /// module as this id; a part that calls it follows.
    Callee(FuncId, ClifFunction),
}

/// A compiled function, as [`Built`]: a part, or a callee and its id.
pub(super) type Compiled = (Option<FuncId>, Context);

/// Runs `build`, which hands each function it builds to the function it is
/// given, and compiles them for `isa`: from the first that has a successor
/// on, by `split.threads - 1` tasks of rayon's global pool, and on this
/// thread once `build` is done. Returns the functions compiled, in the
/// order they were built, and what `build` returned.
pub(super) fn compiled<B>(
    split: Split,
    isa: &dyn TargetIsa,
    build: B,
) -> Result<(Vec<Compiled>, usize), String>
where
    B: FnOnce(&mut dyn FnMut(Built)) -> Result<usize, String>,
{
    let queue = Queue::default();
    let built = rayon::in_place_scope(|s| {
        // Closed when `build` returns or panics, so that no helper waits
        // for parts that will not come.
        let closing = Closing(&queue);
        let mut helpers = 0;
        let built = build(&mut |built| {
            let (id, func, more) = match built {
                Built::Part(func, more) => (None, func, more),
                Built::Callee(id, func) => (Some(id), func, true),
            };
            queue.push(id, func);
            while more && helpers + 1 < split.threads {
                s.spawn(|_| queue.work(isa));
                helpers += 1;
            }
        });
        drop(closing);
        queue.work(isa);
        built
    });
    let built = built?;
    Ok((queue.results()?, built))
}

/// Defines the compiled functions in `module`, links them, and returns the
/// address of each part's code, in order.
pub(super) fn define(
    module: &mut JITModule,
    compiled: &[Compiled],
) -> Result<Vec<*const u8>, String> {
    let mut ids = Vec::with_capacity(compiled.len());
    for (callee, ctx) in compiled {
        let id = match *callee {
            Some(id) => id,
            None => {
                let id = module
                    .declare_anonymous_function(&ctx.func.signature)
                    .map_err(|e| format!("declaring the entry: {e}"))?;
                ids.push(id);
                id
            }
        };
        let code = ctx.compiled_code().expect("the parts are compiled");
        let relocs: Vec<ModuleReloc> = (code.buffer.relocs().iter())
            .map(|r| ModuleReloc::from_mach_reloc(r, &ctx.func, id))
            .collect();
        let align = u64::from(code.buffer.alignment);
        module
            .define_function_bytes(id, align, code.code_buffer(), &relocs)
            .map_err(|e| format!("cranelift could not define the function: {e}"))?;
    }
    module
        .finalize_definitions()
        .map_err(|e| format!("cranelift could not link the function: {e}"))?;
    Ok(ids
        .into_iter()
        .map(|id| module.get_finalized_function(id))
        .collect())
}

/// Closes its queue when dropped.
struct Closing<'a>(&'a Queue);

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The parts waiting to be compiled, and those compiled.
#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    /// Functions built and not yet taken, each with its position and, for
    /// a callee, its id.
    waiting: VecDeque<(usize, Option<FuncId>, ClifFunction)>,
    /// Functions built so far.
    built: usize,
    /// Whether the last function is built.
    closed: bool,
    /// Functions compiled (or not), each with its position.
    done: Vec<(usize, Result<Compiled, String>)>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A function built, the next in order.
    fn push(&self, id: Option<FuncId>, func: ClifFunction) {
        let mut state = self.lock();
        let k = state.built;
        state.built += 1;
        state.waiting.push_back((k, id, func));
        drop(state);
        self.ready.notify_one();
    }

    /// No more parts will come.
    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Compiles parts as they come until the last is taken.
    fn work(&self, isa: &dyn TargetIsa) {
        loop {
            let (k, id, func) = {
                let mut state = self.lock();
                loop {
                    if let Some(part) = state.waiting.pop_front() {
                        break part;
                    }
                    if state.closed {
                        return;
                    }
                    state = self
                        .ready
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            let mut ctx = Context::for_function(func);
            let result = match ctx.compile(isa, &mut ControlPlane::default()) {
                Ok(_) => Ok(()),
                Err(e) => Err(format!(
                    "cranelift could not compile the function: {:?}",
                    e.inner
                )),
            };
            self.lock().done.push((k, result.map(|()| (id, ctx))));
        }
    }

    /// The compiled functions in order, or the first failure.
    fn results(self) -> Result<Vec<Compiled>, String> {
        let mut done = self
            .state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .done;
        done.sort_by_key(|&(k, _)| k);
        done.into_iter().map(|(_, r)| r).collect()
    }
}
