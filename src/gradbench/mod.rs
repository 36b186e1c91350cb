//! `gradc gradbench`: a tool for GradBench (the successor of ADBench), which
//! speaks its protocol on standard input and output: one JSON message a
//! line from the eval, one JSON response a line from the tool.
//!
//! - `start`: the tool's name.
//! - `define` of a module (an eval): `success` when gradc has a program for
//!   it ([`evals`]), else `success: false` and the reason. The first
//!   `define` compiles a small program of the tool's own ([`WARM_UP`]), so
//!   that the process's first compilation is not the first function's.
//! - `evaluate` of a function of the module on an `input`: the program,
//!   compiled for the input's sizes (once per distinct set of sizes, then
//!   kept), run `min_runs` times and for `min_seconds` at least (GradBench's
//!   `Runs`), with one `"evaluate"` timing per run and a `"compile"` timing
//!   when this message compiled it; the `output` is the loss (the primal
//!   function) or the gradient of the loss in every parameter, or an
//!   `output` of the program when the eval names one. An output that is not
//!   finite (JSON has no NaN) is answered as a failure with the reason.
//! - `analysis` (the eval's verdict on an output): acknowledged.
//! - `end`: the loop stops.
//!
//! A message that cannot be read (not JSON, no `kind`, an input of the
//! wrong shape) gets a response with `success: false` and the reason; the
//! loop goes on.

pub mod evals;

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::backend::subnormals::FlushSubnormals;
use crate::diagnostic::Source;
use crate::eval::{Backend, Evaluator};
use crate::ir::{Function, Role};
use crate::shape::Tensor;
use crate::types::dims::{DimFlags, DimOptions};
use crate::types::CheckOptions;

use evals::{Eval, Point};

/// What the tool calls itself in its response to `start`.
pub const TOOL_NAME: &str = "gradc";

/// How the tool runs the programs.
#[derive(Copy, Clone, Debug)]
pub struct Settings {
    /// What evaluates them: the JIT or the interpreter.
    pub backend: Backend,
    /// Whether subnormal numbers are flushed to zero while they run
    /// ([`FlushSubnormals`]).
    pub flush_subnormals: bool,
    /// The threads a large matrix product may use (0: one per core;
    /// [`crate::backend::kernel::set_threads`]).
    pub threads: usize,
}

impl Settings {
    /// `backend`, with IEEE subnormals, every product on the calling thread.
    pub fn new(backend: Backend) -> Settings {
        Settings {
            backend,
            flush_subnormals: false,
            threads: 1,
        }
    }
}

/// Answers the messages of `input` on `output` until `end` or the end of
/// the input. Only a failure to read or write is an error.
pub fn serve(input: impl BufRead, mut output: impl Write, settings: Settings) -> io::Result<()> {
    let threads = match settings.threads {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        n => n,
    };
    crate::backend::kernel::set_threads(threads);
    let mut tool = Tool::new(settings);
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match tool.respond(&line) {
            Some(response) => {
                writeln!(output, "{response}")?;
                output.flush()?;
            }
            None => break,
        }
    }
    Ok(())
}

/// Which function of a module: the loss, its gradient, or an output of
/// the program (one of the eval's `functions`, or the output an input's
/// derivative is, `Point::answers`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
enum Which {
    Primal,
    Gradient,
    Output(&'static str),
}

/// The tool's state: the programs compiled so far, by module, sizes and
/// function.
pub struct Tool {
    backend: Backend,
    /// Whether the runs flush subnormals to zero.
    flush_subnormals: bool,
    programs: HashMap<(&'static str, DimFlags, Which), Evaluator>,
    /// Whether a `define` has compiled [`WARM_UP`] yet.
    warm: bool,
}

/// A program the first `define` compiles, with its gradient (and the
/// gradient again in parts, on the threads that compile a large program's
/// parts), and throws away: a fresh process's first compilations pay more
/// than later ones (the compiler's code paged in, its heap grown, the
/// threads started), a cost of starting the tool that belongs to `define`,
/// which prepares a module, rather than to the `"compile"` timing of the
/// module's first function. It has what the evals' programs have (a
/// product, a loop carrying a tensor and a number, `grad` and `jvp` inside
/// it, a gather), so that its compilation goes through the code theirs do:
/// with a program of one product and one `exp`, `ba`'s first Jacobian took
/// 9.6 ms (the median of 12 sessions) where its second took 7.4; with this
/// one, 8.5.
const WARM_UP: &str = "dim N
param w: [N, N]
param b: [N]
input x: [N]
input at: [N]
fn layer(v) = tanh(w @ v + b)
let h = layer(x)
let (y, s) = loop (y, s) = (h, 0) for k in 0..4 {
  let g = grad(sum(layer(y)^2), y)
  (y - 0.1 * g, s + jvp(sum(exp(y)), y, h))
}
loss log(sum(exp(y))) + s + sum(h[at])
";

impl Tool {
    pub fn new(settings: Settings) -> Tool {
        Tool {
            backend: settings.backend,
            flush_subnormals: settings.flush_subnormals,
            programs: HashMap::new(),
            warm: false,
        }
    }

    /// The response to one line, or `None` for `end`.
    pub fn respond(&mut self, line: &str) -> Option<Value> {
        let message: Value = match serde_json::from_str(line) {
            Ok(m) => m,
            Err(e) => return Some(failure(Value::Null, format!("not a JSON message: {e}"))),
        };
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        if id.is_null() {
            return Some(failure(id, "the message has no `id`".to_string()));
        }
        let kind = message.get("kind").and_then(Value::as_str);
        Some(match kind {
            Some("start") => json!({ "id": id, "tool": TOOL_NAME }),
            Some("define") => match text_field(&message, "module").and_then(evals::find) {
                Ok(_) => {
                    self.warm_up();
                    json!({ "id": id, "success": true })
                }
                Err(reason) => failure(id, reason),
            },
            Some("evaluate") => match self.evaluate(&message) {
                Ok((output, timings)) => json!({
                    "id": id,
                    "success": true,
                    "output": output,
                    "timings": timings,
                }),
                Err(reason) => failure(id, reason),
            },
            Some("analysis") => json!({ "id": id }),
            Some("end") => return None,
            Some(other) => failure(id, format!("unknown message kind `{other}`")),
            None => failure(id, "the message has no `kind`".to_string()),
        })
    }

    /// Compiles [`WARM_UP`] and its gradient the first time it is called.
    /// A failure (a host the JIT does not support) is the module's
    /// functions' failure too, reported when they compile.
    fn warm_up(&mut self) {
        if !std::mem::replace(&mut self.warm, true) {
            let _ = warm_up(self.backend);
        }
    }

    /// An `evaluate` message's output and timings.
    fn evaluate(&mut self, message: &Value) -> Result<(Value, Vec<Value>), String> {
        let eval = evals::find(text_field(message, "module")?)?;
        let function = text_field(message, "function")?;
        let which = which(eval, function)?;
        let input = message.get("input").ok_or("the message has no `input`")?;
        let runs = Runs::of(input)?;
        let point = (eval.read)(input)?;
        let which = match (which, point.answers) {
            (Which::Gradient, Some(name)) => Which::Output(name),
            (which, _) => which,
        };
        let mut timings = Vec::new();
        let key = (eval.name, point.dims.clone(), which);
        if !self.programs.contains_key(&key) {
            let start = Instant::now();
            let program = compile(eval, &point.dims, which, self.backend)?;
            timings.push(timing("compile", start));
            self.programs.insert(key.clone(), program);
        }
        let program = &self.programs[&key];
        let f = program.function();
        let params = arrange(&f.params, &point, "parameter")?;
        let inputs = arrange(&f.inputs, &point, "input")?;
        // The buffers are kept from run to run, as a program run again
        // and again keeps them.
        let mut runner = program.runner();
        let flush = if self.flush_subnormals {
            Some(FlushSubnormals::on().ok_or("this CPU cannot flush subnormals to zero")?)
        } else {
            None
        };
        let mut seconds = 0.0;
        let mut run = 0;
        while run < runs.min_runs || seconds < runs.min_seconds {
            let start = Instant::now();
            runner
                .run(&params, &inputs)
                .map_err(|e| format!("running `{}`: {e}", eval.name))?;
            let elapsed = start.elapsed();
            seconds += elapsed.as_secs_f64();
            timings.push(json!({ "name": "evaluate", "nanoseconds": elapsed.as_nanos() as u64 }));
            run += 1;
        }
        drop(flush);
        let output = answer(eval, f, runner.last(), which, &point)?;
        if has_null(&output) {
            return Err(format!(
                "`{}`'s `{function}` is not finite at this input (a NaN or an infinity, which JSON cannot carry)",
                eval.name
            ));
        }
        Ok((output, timings))
    }
}

/// [`WARM_UP`] and its gradient compiled, and thrown away.
fn warm_up(backend: Backend) -> Result<(), String> {
    let source = Source::new("warm-up.grad", WARM_UP);
    let opts = CheckOptions {
        dims: DimOptions {
            flags: vec![("N".to_string(), 8)],
            data_dir: None,
        },
        ..CheckOptions::default()
    };
    let compiled = crate::compile_source(&source, &opts).map_err(|e| e.render(false))?;
    let gradient = compiled
        .gradient()
        .map_err(|d| d.render(&source.name, &source.text, false))?;
    for f in [&compiled.ir, &gradient] {
        Evaluator::new(f, backend).map_err(|e| crate::eval::compile_failed(e).render(false))?;
    }
    if backend == Backend::Jit {
        // The threads that compile a large program's parts started, their
        // first allocations made.
        crate::backend::warm_up_parts(&gradient)
            .map_err(|e| crate::eval::compile_failed(e).render(false))?;
    }
    Ok(())
}

/// The function of `eval` named `function`.
fn which(eval: &Eval, function: &str) -> Result<Which, String> {
    if let Some(&name) = eval.functions.iter().find(|&&f| f == function) {
        Ok(Which::Output(name))
    } else if !eval.primal.is_empty() && function == eval.primal {
        Ok(Which::Primal)
    } else if !eval.gradient.is_empty() && function == eval.gradient {
        Ok(Which::Gradient)
    } else {
        let names: Vec<String> = [eval.primal, eval.gradient]
            .iter()
            .chain(eval.functions)
            .filter(|f| !f.is_empty())
            .map(|f| format!("`{f}`"))
            .collect();
        Err(format!(
            "`{}` has no function `{function}` (it has {})",
            eval.name,
            names.join(", ")
        ))
    }
}

/// The program `evaluate` compiles for `module`'s `function` at the sizes
/// `dims` (named as the module's program names them): for timing the
/// compilation alone (`benches/compile.rs`).
pub fn compile_function(
    module: &str,
    function: &str,
    dims: &DimFlags,
    backend: Backend,
) -> Result<Evaluator, String> {
    let eval = evals::find(module)?;
    compile(eval, dims, which(eval, function)?, backend)
}

/// GradBench's `Runs`: how often to run a function, at least.
struct Runs {
    min_runs: usize,
    min_seconds: f64,
}

impl Runs {
    /// From an input's `min_runs` and `min_seconds` (once and no time when
    /// absent, as `hello`'s input, a number, has neither).
    fn of(input: &Value) -> Result<Runs, String> {
        let min_runs = match input.get("min_runs") {
            None => 1,
            Some(v) => v
                .as_u64()
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("`min_runs` must be a positive integer, not {v}"))?
                as usize,
        };
        let min_seconds = match input.get("min_seconds") {
            None => 0.0,
            Some(v) => v
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| format!("`min_seconds` must be a number of seconds, not {v}"))?,
        };
        Ok(Runs {
            min_runs,
            min_seconds,
        })
    }
}

/// The eval's program compiled for these sizes: its loss, or its gradient
/// program, or the one output a function answers.
fn compile(
    eval: &Eval,
    dims: &DimFlags,
    which: Which,
    backend: Backend,
) -> Result<Evaluator, String> {
    let source = Source::new(format!("gradbench/{}.grad", eval.name), eval.source);
    let opts = CheckOptions {
        dims: DimOptions {
            flags: dims.clone(),
            data_dir: None,
        },
        ..CheckOptions::default()
    };
    let f = match answered(eval, which) {
        Some((role, name)) => only(&source, &opts, role, name)?,
        None => {
            let compiled = crate::compile_source(&source, &opts).map_err(|e| e.render(false))?;
            match which {
                Which::Gradient => compiled
                    .gradient()
                    .map_err(|d| d.render(&source.name, &source.text, false))?,
                _ => compiled.ir,
            }
        }
    };
    Evaluator::new(&f, backend).map_err(|e| crate::eval::compile_failed(e).render(false))
}

/// The one output of the program (by role and name) that the function
/// answers, when the program computes it itself: one of the eval's
/// `functions`, or the `output` or `derivative` of an eval whose program
/// computes its derivative (each function is then the program with only
/// the output it answers). `None` for the loss and its gradient program.
fn answered(eval: &Eval, which: Which) -> Option<(Role, &'static str)> {
    match (which, eval.derivative) {
        (Which::Output(name), _) | (Which::Gradient, Some(name)) => Some((Role::Output, name)),
        (Which::Primal, Some(_)) => Some(match eval.output {
            Some(name) => (Role::Output, name),
            None => (Role::Loss, "loss"),
        }),
        (_, None) => None,
    }
}

/// The program with only its output `name` of `role`: the others are not
/// lowered (a function of `saddle` lowers one of its four descents, not
/// all), and the work they alone need is removed.
fn only(
    source: &std::sync::Arc<Source>,
    opts: &CheckOptions,
    role: Role,
    name: &str,
) -> Result<Function, String> {
    let in_source = |d| crate::diagnostic::Error::in_source(source, d).render(false);
    let mut typed = crate::check(&source.text, opts).map_err(in_source)?;
    typed.metrics.clear();
    typed
        .outputs
        .retain(|o| role == Role::Output && o.name == name);
    if role != Role::Loss {
        typed.loss = None;
    }
    let mut f = crate::lower::lower(&typed).map_err(in_source)?;
    f.outputs.retain(|o| o.role == role && o.name == name);
    crate::passes::simplify(&mut f);
    Ok(f)
}

/// The values of `slots` (the function's parameters or inputs) taken from
/// the point by name, checked against their shapes.
fn arrange(slots: &[crate::ir::Slot], point: &Point, what: &str) -> Result<Vec<Tensor>, String> {
    slots
        .iter()
        .map(|slot| {
            let t = point
                .values
                .iter()
                .find(|(name, _)| *name == slot.name)
                .map(|(_, t)| t)
                .ok_or_else(|| {
                    format!("the input gives no value for the {what} `{}`", slot.name)
                })?;
            if t.shape != slot.shape {
                return Err(format!(
                    "`{}` has shape {}, the program's {what} is {}",
                    slot.name, t.shape, slot.shape
                ));
            }
            Ok(t.clone())
        })
        .collect()
}

/// The output GradBench expects: the loss as a number (or the eval's
/// `output`, nested arrays or in the eval's `format`, when it names one); the gradient all in one
/// flat vector when the eval asks for that, else the gradient of the
/// one parameter as its nested arrays, or of several as an object by name.
fn answer(
    eval: &Eval,
    f: &Function,
    outputs: &[Tensor],
    which: Which,
    point: &Point,
) -> Result<Value, String> {
    let find = |role: Role| {
        f.outputs
            .iter()
            .position(|o| o.role == role)
            .ok_or_else(|| format!("the program computes no {role:?}"))
    };
    let of = |role: Role| find(role).map(|k| nested(&outputs[k]));
    let named = |name: &str| {
        let k = f
            .outputs
            .iter()
            .position(|o| o.role == Role::Output && o.name == name)
            .ok_or_else(|| format!("the program has no output `{name}`"))?;
        match (&eval.format, which) {
            (Some(format), Which::Primal) => (format.primal)(&outputs[k], point),
            (Some(format), Which::Gradient | Which::Output(_)) => {
                (format.derivative)(&outputs[k], point)
            }
            (None, _) => Ok(nested(&outputs[k])),
        }
    };
    match (which, eval.derivative) {
        (Which::Output(name), _) => named(name),
        (Which::Primal, _) => match eval.output {
            None => of(Role::Loss),
            Some(name) => named(name),
        },
        (Which::Gradient, Some(name)) => named(name),
        (Which::Gradient, None) if eval.flat => {
            let mut flat = Vec::new();
            for i in 0..f.params.len() {
                let k = find(Role::Grad(i))?;
                flat.extend(outputs[k].data.iter().map(|&x| json!(x)));
            }
            Ok(Value::Array(flat))
        }
        (Which::Gradient, None) if f.params.len() == 1 => of(Role::Grad(0)),
        (Which::Gradient, None) => {
            let mut object = Map::new();
            for (i, p) in f.params.iter().enumerate() {
                object.insert(p.name.clone(), of(Role::Grad(i))?);
            }
            Ok(Value::Object(object))
        }
    }
}

/// A tensor as JSON: a number, or arrays of rows nested by its shape.
pub fn nested(t: &Tensor) -> Value {
    fn level(dims: &[usize], data: &[f64]) -> Value {
        match dims.split_first() {
            None => json!(data[0]),
            Some((&n, rest)) => {
                let step = rest.iter().product::<usize>();
                Value::Array(
                    (0..n)
                        .map(|i| level(rest, &data[i * step..(i + 1) * step]))
                        .collect(),
                )
            }
        }
    }
    level(t.shape.dims(), &t.data)
}

/// Whether a number of the answer was not finite (serde_json writes NaN
/// and the infinities as `null`).
fn has_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(items) => items.iter().any(has_null),
        Value::Object(o) => o.values().any(has_null),
        _ => false,
    }
}

fn timing(name: &str, start: Instant) -> Value {
    json!({ "name": name, "nanoseconds": start.elapsed().as_nanos() as u64 })
}

fn failure(id: Value, error: String) -> Value {
    json!({ "id": id, "success": false, "error": error })
}

fn text_field<'a>(message: &'a Value, name: &str) -> Result<&'a str, String> {
    message
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the message has no `{name}` string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The program `define` compiles to warm the compiler up compiles, on
    /// both backends.
    #[test]
    fn the_warm_up_program_compiles() {
        for backend in [Backend::Jit, Backend::Interp] {
            warm_up(backend).unwrap();
        }
    }

    /// `ba`'s program at small sizes, and the options binding them.
    fn ba() -> (&'static Eval, std::sync::Arc<Source>, CheckOptions) {
        let eval = evals::EVALS.iter().find(|e| e.name == "ba").expect("ba");
        let source = Source::new("ba.grad", eval.source);
        let flags: DimFlags = vec![("N".into(), 2), ("M".into(), 3), ("P".into(), 4)];
        let opts = CheckOptions {
            dims: DimOptions {
                flags,
                data_dir: None,
            },
            ..CheckOptions::default()
        };
        (eval, source, opts)
    }

    /// A function's program lowered with its one output only is the
    /// whole program's, simplified without the others.
    #[test]
    fn one_output_is_the_whole_program_without_the_others() {
        let (eval, source, opts) = ba();
        for (which, name) in [(Which::Primal, "err"), (Which::Gradient, "jac")] {
            assert_eq!(answered(eval, which), Some((Role::Output, name)));
            let mut whole = crate::compile_source(&source, &opts).expect("compiles").ir;
            whole.outputs.retain(|o| o.name == name);
            crate::passes::simplify(&mut whole);
            let one = only(&source, &opts, Role::Output, name).expect("compiles");
            assert_eq!(one.outputs.len(), 1);
            assert_eq!(one.to_string(), whole.to_string(), "{name}");
        }
    }

    /// `ht`'s simple variant (no `us`) answers its Jacobian with the
    /// program of `J_pose`, the pose's 26 columns alone, and the
    /// complicated variant with `J`'s 28: each a program of its own.
    #[test]
    fn hts_simple_variant_compiles_the_poses_columns_alone() {
        let text = include_str!("../../tests/gradbench/ht.jsonl");
        let mut tool = Tool::new(Settings::new(Backend::Jit));
        let mut widths = Vec::new();
        for line in text.lines() {
            let message: Value = serde_json::from_str(line).unwrap();
            if message["function"] == "jacobian" {
                tool.programs.clear();
            }
            // (`end` has no response.)
            let Some(response) = tool.respond(line) else {
                continue;
            };
            assert_ne!(response["success"], false, "{response}");
            if message["function"] != "jacobian" {
                continue;
            }
            let simple = message["input"]["us"].as_array().unwrap().is_empty();
            let [(key, program)] = Vec::from_iter(&tool.programs)[..] else {
                panic!("one program");
            };
            let output = &program.function().outputs[0];
            let (which, want) = match simple {
                true => (Which::Output("J_pose"), "J_pose"),
                false => (Which::Gradient, "J"),
            };
            assert_eq!(key.2, which);
            assert_eq!(output.name, want);
            let shape = program.function().shape(output.value).dims().to_vec();
            widths.push((simple, shape[1]));
        }
        widths.sort();
        widths.dedup();
        assert_eq!(widths, [(false, 28), (true, 26)]);
    }

    /// `ba`'s Jacobian reads a camera's and a point's columns one by one
    /// (66 pieces of its gradients placed into [P, 11] and [P, 3], then
    /// added): each gradient is its columns side by side. Only the two
    /// seeds, a one in a column of [P, 2], are placed.
    #[test]
    fn the_columns_of_bas_gradients_are_set_side_by_side() {
        let (_, source, opts) = ba();
        let jac = only(&source, &opts, Role::Output, "jac").expect("compiles");
        let placed: Vec<_> = jac
            .insts()
            .iter()
            .filter(|i| matches!(i.op, crate::ir::Op::Unslice(..)))
            .map(|i| i.shape.to_string())
            .collect();
        assert_eq!(placed, ["[4, 2]", "[4, 2]"]);
    }
}
