//! `:train` and `:save FILE.safetensors`: the session through the training
//! runtime. Training starts from the params' current values, runs the
//! session's train block (or the defaults of a program without one), and
//! leaves the trained values in the session.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::repl::commands::Style;
use crate::repl::session::{Error, Session};
use crate::runtime::{self, checkpoint, Checkpoint, Observer, Plan, StepEvent, Stop};
use crate::shape::{fmt_short, fmt_value};

/// Trains the session's params; the text is a summary of the run.
pub fn train(session: &mut Session, style: Style) -> Result<String, Error> {
    let whole = session.whole()?;
    let c = &whole.compiled;
    if c.typed.loss.is_none() && c.typed.residual.is_none() {
        return Err(Error::new(
            "the session has no `loss` to train: define one with `loss EXPR` (or `residual NAME = EXPR`)".to_string(),
        ));
    }
    let cfg = c.typed.train.clone().unwrap_or_default();
    let names: Vec<String> = c.typed.params.iter().map(|p| p.name.clone()).collect();
    let stop = style.interactive.then(interrupt_flag).flatten();
    if let Some(flag) = &stop {
        flag.store(false, Ordering::Relaxed);
    }
    let opts = runtime::Options {
        base_dir: whole.dir.clone().unwrap_or_default(),
        backend: session.backend(),
        initial: Some(whole.params.clone()),
        stop,
        // On every core, as `gradc train` (the same bits on one, to which
        // a pool that cannot start falls back).
        threads: runtime::shards::Threads::new(0).unwrap_or_default(),
        ..runtime::Options::default()
    };
    let mut progress = Progress::new(style.interactive);
    let result = runtime::train(c, &cfg, &opts, &mut progress);
    progress.bar.finish_and_clear();
    let report = result.map_err(|e| whole.locate(e))?;
    session.set_params(names.iter().cloned().zip(report.params.clone()).collect());

    let mut out = String::new();
    let _ = write!(
        out,
        "trained {} step{}",
        report.steps,
        if report.steps == 1 { "" } else { "s" }
    );
    if progress.has_data {
        let _ = write!(
            out,
            ", {} epoch{}",
            report.epochs,
            if report.epochs == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(out, ": {}", report.stop);
    let first = report.history.first().map(|h| h.loss);
    match first {
        Some(first) => {
            let _ = writeln!(
                out,
                "loss {} -> {}",
                fmt_short(first),
                fmt_short(report.train.loss)
            );
        }
        None => {
            let _ = writeln!(out, "loss {}", fmt_short(report.train.loss));
        }
    }
    for (name, v) in &report.train.metrics {
        let _ = writeln!(out, "metric {name} = {}", fmt_short(*v));
    }
    if let Some(v) = &report.validation {
        let _ = writeln!(out, "validation loss {}", fmt_short(v.loss));
        for (name, m) in &v.metrics {
            let _ = writeln!(out, "validation metric {name} = {}", fmt_short(*m));
        }
    }
    for n in &report.notes {
        let _ = writeln!(out, "note: {n}");
    }
    for (name, t) in names.iter().zip(&report.params) {
        let _ = writeln!(out, "param {name} = {}", fmt_value(t));
    }
    if let Stop::Fault { origin, .. } = &report.stop {
        if let Some(e) = origin {
            // Where the NaN came from, placed in the text typed.
            out.push_str(&whole.locate(e.as_ref().clone()).render(style.color));
        }
        out.push_str("note: the params hold the last values with a finite loss and gradient\n");
    }
    Ok(out)
}

/// Writes the params' current values as a safetensors file, as `gradc
/// train --save` does (without optimizer state).
pub fn save_params(session: &Session, path: &Path) -> Result<String, Error> {
    let (names, params): (Vec<String>, Vec<_>) = session.params().into_iter().unzip();
    if names.is_empty() {
        return Err(Error::new("the session has no params to save".to_string()));
    }
    let ck = Checkpoint {
        params,
        names,
        step: 0,
        epoch: 0,
        optimizer: None,
    };
    checkpoint::save(path, &ck)?;
    Ok(format!(
        "saved {} param{} to {}",
        ck.names.len(),
        if ck.names.len() == 1 { "" } else { "s" },
        path.display()
    ))
}

/// The flag a Ctrl-C sets while training, installed on first use; `None` if
/// a handler could not be installed (Ctrl-C then ends the process).
fn interrupt_flag() -> Option<Arc<AtomicBool>> {
    static FLAG: OnceLock<Option<Arc<AtomicBool>>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let set = flag.clone();
        ctrlc::set_handler(move || set.store(true, Ordering::Relaxed))
            .ok()
            .map(|()| flag)
    })
    .clone()
}

/// The progress bar: steps done and the last batch's loss, on stderr; hidden
/// when the REPL is not on a terminal.
struct Progress {
    bar: ProgressBar,
    /// The model reads data, so epochs mean something.
    has_data: bool,
}

impl Progress {
    fn new(visible: bool) -> Progress {
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if visible {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  [{elapsed}]")
        {
            bar.set_style(style);
        }
        Progress {
            bar,
            has_data: false,
        }
    }
}

impl Observer for Progress {
    fn start(&mut self, plan: &Plan) {
        self.has_data = plan.has_data;
        self.bar
            .set_length(plan.steps.saturating_sub(plan.first_step));
    }

    fn step(&mut self, e: &StepEvent<'_>) {
        self.bar.set_message(format!("loss {}", fmt_short(e.loss)));
        self.bar.inc(1);
    }
}
