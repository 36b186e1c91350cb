//! `gradc train`, `gradc predict`, and `gradc eval --weights/--data`: the
//! training runtime's commands, with the progress display and the summary.

use crate::runtime::shards::Threads;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Map, Value as Json};

use super::{compile, counted, tensor_json};
use crate::diagnostic::Error;
use crate::driver::{self, point, Overrides};
use crate::dtype::Dtype;
use crate::eval::Backend;
use crate::runtime::{self, checkpoint, EpochRecord, Observer, Options, Plan, StepEvent, Stop};
use crate::shape::{fmt_num, fmt_short, fmt_tensor, Shape, Tensor};
use crate::types::dims::DimFlags;
use crate::Compiled;

/// `gradc train`: the options override the train block.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// The .grad file.
    pub file: PathBuf,
    /// Stop after this many passes over the training set.
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Stop after this many optimizer steps.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Examples per step: a number (1 is stochastic gradient descent) or `full`.
    #[arg(long, value_name = "N|full")]
    pub batch: Option<String>,
    /// The learning rate (of the train block's optimizer, or of --optimizer).
    #[arg(long)]
    pub lr: Option<f64>,
    /// The optimizer, as in a train block: `adam`, `momentum(lr = 0.1, beta = 0.8)`; full batch: `newton`, `lbfgs(memory = 10)`, `levenberg_marquardt`, `gauss_newton`.
    #[arg(long, value_name = "OPTIMIZER")]
    pub optimizer: Option<String>,
    /// The learning-rate schedule, as in a train block: `cosine`, `step(every = 100)`.
    #[arg(long, value_name = "SCHEDULE")]
    pub schedule: Option<String>,
    /// Seed of the initialisers, the shuffles and the validation split.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep the examples in file order instead of reshuffling every epoch.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Fraction of the examples held out for validation.
    #[arg(long, value_name = "FRACTION")]
    pub validate: Option<f64>,
    /// Early stopping: epochs without a better validation loss.
    #[arg(long)]
    pub patience: Option<u64>,
    /// Stop when an epoch's training loss is below this.
    #[arg(long)]
    pub loss_tol: Option<f64>,
    /// Stop when the gradient norm is below this.
    #[arg(long)]
    pub grad_tol: Option<f64>,
    /// Full-batch optimizers: stop when a step changes the loss by less than this fraction of it.
    #[arg(long)]
    pub rel_tol: Option<f64>,
    /// Train on this CSV file (relative to the current directory) instead of
    /// the train block's, with the train block's column mapping.
    #[arg(long, value_name = "CSV")]
    pub data: Option<PathBuf>,
    /// Write the parameters (and the optimizer state) to this safetensors
    /// file at the end, also after an interruption or a fault.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Start from the parameters and optimizer state of a file written by
    /// --save; the step and epoch counters continue from it.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// Write the per-epoch history as CSV.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Draw the training and validation loss curves (.svg or .png).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Print every step's parameters (automatic for a program without data
    /// and at most 20 steps).
    #[arg(long)]
    pub trace: bool,
    /// No progress display and no trace; only the summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// What evaluates the program: the Cranelift JIT, or the reference interpreter.
    #[arg(long, value_enum, default_value_t = Backend::Jit)]
    pub backend: Backend,
    /// The float type to train in, overriding the train block's `dtype`
    /// (default f64; f32 needs the JIT and a first-order optimizer).
    #[arg(long, value_enum)]
    pub dtype: Option<Dtype>,
    /// Threads the examples of a batch are split over (0: one per core, the
    /// default); the results are the same bits at any count.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
}

impl TrainArgs {
    /// The options that override the train block.
    fn overrides(&self) -> Overrides {
        Overrides {
            epochs: self.epochs,
            steps: self.steps,
            batch: self.batch.clone(),
            lr: self.lr,
            optimizer: self.optimizer.clone(),
            schedule: self.schedule.clone(),
            seed: self.seed,
            no_shuffle: self.no_shuffle,
            validate: self.validate,
            patience: self.patience,
            loss_tol: self.loss_tol,
            grad_tol: self.grad_tol,
            rel_tol: self.rel_tol,
            data: self.data.clone(),
        }
    }
}

/// `gradc train FILE`.
pub fn train(args: TrainArgs, dims: &DimFlags) -> Result<(), Error> {
    check_outputs(&args)?;
    let c = compile(&args.file, dims)?;
    let cfg = driver::train_config(&c, &args.overrides()).map_err(counted)?;
    let decls = point::param_decls(&c);
    let resume = match &args.resume {
        Some(path) => Some(checkpoint::load(path, &decls)?),
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let flag = stop.clone();
        // A second Ctrl-C ends the process at once. Failing to install the
        // handler (one is already installed) only loses the clean stop.
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    }
    let opts = Options {
        base_dir: driver::base_dir(&args.file),
        backend: args.backend,
        dtype: args.dtype,
        resume,
        stop: Some(stop),
        threads: Threads::new(args.threads)?,
        ..Options::default()
    };
    let mut progress = Progress::new(&args, &decls);
    let result = runtime::train(&c, &cfg, &opts, &mut progress);
    progress.finish();
    let rep = result?;

    for n in &rep.notes {
        eprintln!("note: {n}");
    }
    // An output that cannot be written after all (the disk full, the
    // directory removed during the run) loses nothing: the summary and the
    // parameters are printed first, then the error.
    let mut wrote: Vec<String> = Vec::new();
    let mut failed: Option<Error> = None;
    let mut fail = |e: Error| {
        failed = Some(match failed.take() {
            Some(f) => f.and(e),
            None => e,
        })
    };
    if let Some(path) = &args.save {
        match checkpoint::save(path, &rep.checkpoint) {
            Ok(()) => wrote.push(format!("weights saved to {}", path.display())),
            Err(e) => fail(e.context("--save: ")),
        }
    }
    if let Some(path) = &args.log {
        match runtime::history::write_csv(path, &rep.history, &rep.metrics) {
            Ok(()) => wrote.push(format!("history written to {}", path.display())),
            Err(e) => fail(e.context("--log: ")),
        }
    }
    if let Some(path) = &args.plot {
        let x = if progress.has_data { "epoch" } else { "step" };
        match runtime::history::plot(path, &rep.history, x) {
            Ok(()) => wrote.push(format!("loss curves drawn to {}", path.display())),
            Err(e) => fail(e.context("--plot: ")),
        }
    }
    if args.json {
        print_json(&c, &rep, &wrote, opts.threads.count());
    } else {
        print_summary(&c, &rep, progress.batch_text.as_deref(), &wrote);
    }
    let stopped = match &rep.stop {
        Stop::Fault { origin: Some(e), .. } => Some(e.as_ref().clone().note(
            None,
            "the parameters are the last ones with a finite loss and gradient",
        )),
        Stop::Fault { origin: None, .. } => Some(Error::new(format!(
            "training stopped at {}; the parameters are the last ones with a finite loss and gradient",
            rep.stop
        ))),
        Stop::Interrupted => Some(Error::new(format!(
            "training interrupted after step {}",
            rep.last_step
        ))),
        _ => None,
    };
    match (failed, stopped) {
        (Some(f), Some(s)) => Err(f.and(s)),
        (Some(e), None) | (None, Some(e)) => Err(e),
        (None, None) => Ok(()),
    }
}

/// Every output path of `gradc train`, checked before any work: a bad one
/// fails at once instead of after the run. Each must be writable (see
/// [`checkpoint::check_writable`]), and a plot's an .svg or a .png.
fn check_outputs(args: &TrainArgs) -> Result<(), Error> {
    let outputs = [
        ("--save", &args.save),
        ("--log", &args.log),
        ("--plot", &args.plot),
    ];
    let mut bad: Option<Error> = None;
    for (option, path) in outputs {
        let Some(path) = path else { continue };
        let mut reason = checkpoint::check_writable(path)
            .err()
            .map(|r| format!("{option}: cannot write `{}`: {r}", path.display()));
        if option == "--plot" && reason.is_none() {
            reason = runtime::history::plot_format(path)
                .err()
                .map(|r| format!("{option}: cannot plot to `{}`: {r}", path.display()));
        }
        if let Some(r) = reason {
            let e = Error::new(r);
            bad = Some(match bad {
                Some(b) => b.and(e),
                None => e,
            });
        }
    }
    bad.map_or(Ok(()), Err)
}

fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn evaluation_line(e: &runtime::Evaluation) -> String {
    let mut s = format!("loss {}", fmt_short(e.loss));
    for (m, v) in &e.metrics {
        s.push_str(&format!("  {m} {}", fmt_short(*v)));
    }
    s
}

/// Parameters with at most this many numbers are printed in the summary.
const SHOW_PARAMS: usize = 12;

fn print_summary(c: &Compiled, rep: &runtime::Report, batch: Option<&str>, wrote: &[String]) {
    let per_step = if rep.steps > 0 {
        format!(", {}/step", duration(rep.wall / rep.steps as u32))
    } else {
        String::new()
    };
    // f64 is the default and goes unsaid.
    let dtype = match rep.dtype {
        Dtype::F64 => "",
        Dtype::F32 => ", in f32",
    };
    let epochs = match batch {
        Some(b) => format!(
            " ({} epoch{}, {b})",
            rep.epochs,
            if rep.epochs == 1 { "" } else { "s" }
        ),
        None => String::new(),
    };
    outln!(
        "trained {} step{}{epochs} in {}{per_step}{dtype}: {}",
        rep.steps,
        if rep.steps == 1 { "" } else { "s" },
        duration(rep.wall),
        rep.stop
    );
    // Unlike the progress lines' loss (the mean over an epoch's batches, as
    // they were trained), the summary's is the whole data set's at the final
    // parameters: the label says so.
    let on = |what: &str, e: &runtime::Evaluation| {
        format!(
            "{what} data ({} example{}) at the final parameters:",
            e.examples,
            if e.examples == 1 { "" } else { "s" }
        )
    };
    match batch {
        Some(_) => {
            // Training, validation and test lines, their values aligned.
            let mut lines = vec![(on("training", &rep.train), &rep.train)];
            if let Some(v) = &rep.validation {
                lines.push((on("validation", v), v));
            }
            if let Some(t) = &rep.test {
                lines.push((on("test", t), t));
            }
            let width = lines.iter().map(|(l, _)| l.chars().count()).max();
            let width = width.unwrap_or(0);
            for (label, e) in lines {
                outln!("{label:width$} {}", evaluation_line(e));
            }
        }
        None => outln!("at the final parameters: {}", evaluation_line(&rep.train)),
    }
    if let Some(g) = rep.grad_norm {
        outln!("gradient norm at the final parameters: {}", fmt_short(g));
    }
    let total: usize = rep.params.iter().map(|p| p.data.len()).sum();
    if total <= SHOW_PARAMS {
        for (p, t) in c.typed.params.iter().zip(&rep.params) {
            outln!("{} = {}", p.name, fmt_tensor(t, fmt_short));
        }
    }
    for w in wrote {
        outln!("{w}");
    }
}

pub(super) fn evaluation_json(e: &runtime::Evaluation) -> Json {
    let mut metrics = Map::new();
    for (m, v) in &e.metrics {
        metrics.insert(m.clone(), tensor_json(&Tensor::scalar(*v)));
    }
    json!({ "loss": tensor_json(&Tensor::scalar(e.loss)), "metrics": metrics, "examples": e.examples })
}

fn print_json(c: &Compiled, rep: &runtime::Report, wrote: &[String], threads: usize) {
    let mut params = Map::new();
    for (p, t) in c.typed.params.iter().zip(&rep.params) {
        params.insert(p.name.clone(), tensor_json(t));
    }
    let doc = json!({
        "steps": rep.steps,
        "epochs": rep.epochs,
        "stop": rep.stop.to_string(),
        "grad_norm": rep.grad_norm,
        "seconds": rep.wall.as_secs_f64(),
        "dtype": rep.dtype.name(),
        "threads": threads,
        "train": evaluation_json(&rep.train),
        "validation": rep.validation.as_ref().map(evaluation_json),
        "test": rep.test.as_ref().map(evaluation_json),
        "params": params,
        "files": wrote,
    });
    outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

/// Loading takes this long before its progress is shown.
const LOAD_QUIET: Duration = Duration::from_millis(500);

/// The progress of loading data: a bar of the bytes read, on a terminal
/// only, and only once loading has taken longer than [`LOAD_QUIET`].
pub(super) struct LoadBar {
    start: Instant,
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl LoadBar {
    pub(super) fn new(quiet: bool) -> LoadBar {
        LoadBar {
            start: Instant::now(),
            bar: None,
            quiet,
        }
    }

    pub(super) fn update(&mut self, l: &runtime::data::Loading<'_>) {
        if self.quiet {
            return;
        }
        if self.bar.is_none()
            && l.done < l.total
            && self.start.elapsed() > LOAD_QUIET
            && std::io::stderr().is_terminal()
        {
            let bar = ProgressBar::with_draw_target(Some(l.total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{elapsed_precise} loading {msg} {bar:30.cyan/blue} {bytes}/{total_bytes} ({bytes_per_sec})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_length(l.total);
            bar.set_position(l.done);
            bar.set_message(l.path.to_string());
        }
    }

    pub(super) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// The progress display: an indicatif bar on a terminal, a line every few
/// epochs otherwise, and the trace of the iterates.
struct Progress {
    /// Data loading's, before the run.
    load: LoadBar,
    bar: Option<ProgressBar>,
    /// Plain lines on stderr (not a terminal), every `every` epochs.
    plain: bool,
    every: u64,
    quiet: bool,
    trace: Option<bool>,
    names: Vec<String>,
    metrics: Vec<String>,
    epochs: Option<u64>,
    first_step: u64,
    has_data: bool,
    batch_text: Option<String>,
    last_message: Option<Instant>,
}

impl Progress {
    fn new(args: &TrainArgs, decls: &[(String, Shape)]) -> Progress {
        Progress {
            load: LoadBar::new(args.quiet),
            bar: None,
            plain: false,
            every: 1,
            quiet: args.quiet,
            // Decided at the start when not asked for.
            trace: args.trace.then_some(true),
            names: decls.iter().map(|(n, _)| n.clone()).collect(),
            metrics: Vec::new(),
            epochs: None,
            first_step: 0,
            has_data: false,
            batch_text: None,
            last_message: None,
        }
    }

    fn finish(&mut self) {
        self.load.finish();
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn tracing(&self) -> bool {
        !self.quiet && self.trace == Some(true)
    }

    fn epoch_text(&self, r: &EpochRecord) -> String {
        let mut s = match self.epochs {
            Some(n) if self.has_data => format!("epoch {}/{n}", r.epoch),
            _ if self.has_data => format!("epoch {}", r.epoch),
            _ => format!("step {}", r.step),
        };
        s.push_str(&format!("  loss {}", fmt_short(r.loss)));
        for (m, v) in self.metrics.iter().zip(&r.metrics) {
            s.push_str(&format!("  {m} {}", fmt_short(*v)));
        }
        if let Some((l, ms)) = &r.validation {
            s.push_str(&format!("  val_loss {}", fmt_short(*l)));
            for (m, v) in self.metrics.iter().zip(ms) {
                s.push_str(&format!("  val_{m} {}", fmt_short(*v)));
            }
        }
        s
    }
}

/// Plain progress lines at most about this many times a run.
const PLAIN_LINES: u64 = 20;

impl Observer for Progress {
    fn loading(&mut self, l: &runtime::data::Loading<'_>) {
        self.load.update(l);
    }

    fn start(&mut self, plan: &Plan) {
        self.load.finish();
        self.metrics = plan.metrics.clone();
        self.has_data = plan.has_data;
        self.first_step = plan.first_step;
        let epochs = plan.steps.div_ceil(plan.steps_per_epoch.max(1));
        self.epochs = Some(epochs);
        self.every = epochs.div_ceil(PLAIN_LINES).max(1);
        if plan.has_data {
            self.batch_text = Some(if plan.batch >= plan.train_examples {
                format!("full batch of {}", plan.train_examples)
            } else {
                format!("batch {} of {} examples", plan.batch, plan.train_examples)
            });
        }
        if self.trace.is_none() {
            self.trace = Some(!plan.has_data && plan.steps.saturating_sub(plan.first_step) <= 20);
        }
        if self.quiet || self.tracing() {
            return;
        }
        if std::io::stderr().is_terminal() {
            let len = plan.steps.saturating_sub(plan.first_step);
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{elapsed_precise} {bar:30.cyan/blue} {pos}/{len} steps  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            self.bar = Some(bar);
        } else {
            self.plain = true;
        }
    }

    fn step(&mut self, e: &StepEvent<'_>) {
        if let Some(bar) = &self.bar {
            bar.set_position(e.step - self.first_step);
        }
        if self.tracing() {
            let mut line = format!("step {}  loss {}", e.step, fmt_num(e.loss));
            for (n, p) in self.names.iter().zip(e.params) {
                line.push_str(&format!("  {n} = {p}"));
            }
            outln!("{line}");
        }
    }

    fn epoch(&mut self, r: &EpochRecord) {
        if let Some(bar) = &self.bar {
            // Throttled: a program without data has an epoch every step.
            let now = Instant::now();
            if self
                .last_message
                .is_none_or(|t| now.duration_since(t) > Duration::from_millis(100))
            {
                bar.set_message(self.epoch_text(r));
                self.last_message = Some(now);
            }
        } else if self.plain {
            // Every few epochs, and at least every 10 seconds of a long run.
            let now = Instant::now();
            let late = self
                .last_message
                .is_some_and(|t| now.duration_since(t) > Duration::from_secs(10));
            if r.epoch.is_multiple_of(self.every) || r.epoch == 1 || !r.complete || late {
                eprintln!("{}", self.epoch_text(r));
                self.last_message = Some(now);
            }
        }
    }
}
