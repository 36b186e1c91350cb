//! The fuzzer: seeded, deterministic, stable Rust (no libFuzzer). Four
//! targets, each a stream of inputs from one seed:
//!
//! - `mutate`: the `.grad` files of `examples/` and `tests/` mutated at the
//!   token level (delete, duplicate, swap, replace, insert, splice from
//!   another file, deep nesting) and now and then at the byte level (invalid
//!   UTF-8, control characters, truncation);
//! - `generate`: random well-typed programs ([`gen`]) that use every builtin;
//! - `csv`: the CSV data files mutated at the field and byte level, loaded
//!   through the runtime against a matching program, and trained on
//!   ([`data`]; another format is another [`data::Format`]);
//! - `arrays`: `.npy`, `.npz` and IDX files written here, mutated in their
//!   headers, sizes, zip entries and bytes, loaded and trained on the same
//!   way ([`arrays`]);
//! - `repl`: the REPL scripts (and corpus files) mutated like the programs,
//!   fed to a JIT session and an interpreter session, whose replies must be
//!   the same text ([`repl`]).
//!
//! A `.grad` input goes through the whole pipeline ([`pipeline`]): the front
//! end (a failure must be diagnostics whose spans lie in the source and that
//! render), the verifier, autodiff, then the forward and gradient programs on
//! the interpreter, the JIT one example a call and the batched JIT, compared
//! bit for bit (NaN payloads aside), faults included.
//!
//! A panic is caught (a quiet panic hook on the fuzzing thread only), a hang
//! is caught by a watchdog that aborts the process; either way the input is
//! written to `target/fuzz-failures/` with a `.txt` beside it saying what
//! happened. The values an input runs on are drawn from a hash of its bytes,
//! so a failure file replays alone (`replay`).
//!
//! - `smoke`: part of `cargo test`, a fixed seed, a small fixed number of
//!   inputs per target.
//! - `long` (ignored): `cargo test --release --test it fuzz::long --
//!   --ignored --nocapture`, with `GRADC_FUZZ_INPUTS` (100000),
//!   `GRADC_FUZZ_SECONDS` (no cap), `GRADC_FUZZ_SEED` (from the clock),
//!   `GRADC_FUZZ_TIMEOUT` (seconds per input: 10, 60 in a debug build).
//! - `replay` (ignored): `GRADC_FUZZ_REPLAY=FILE_OR_DIR cargo test --test it
//!   fuzz::replay -- --ignored --nocapture`.

mod arrays;
mod data;
mod gen;
mod guard;
mod mutate;
mod pipeline;
mod repl;
mod rng;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use data::Format as _;
use guard::{panic_text, QuietPanics, Watchdog, LAST_PANIC, QUIET};
use rng::R;

/// What the fuzzer feeds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Mutate,
    Generate,
    Csv,
    Repl,
    Arrays,
}

impl Target {
    const ALL: [Target; 5] = [
        Target::Mutate,
        Target::Generate,
        Target::Csv,
        Target::Repl,
        Target::Arrays,
    ];

    fn name(self) -> &'static str {
        match self {
            Target::Mutate => "mutate",
            Target::Generate => "generate",
            Target::Csv => "csv",
            Target::Repl => "repl",
            Target::Arrays => "arrays",
        }
    }
}

/// One input: the bytes a target produced, and for a data file the program
/// that reads it.
#[derive(Clone, Debug)]
pub struct Input {
    pub target: Target,
    pub bytes: Vec<u8>,
    /// For a data file: the `.grad` program that reads it.
    pub program: Option<String>,
}

impl Input {
    /// The extension of the failure file.
    fn extension(&self) -> &'static str {
        match self.target {
            Target::Mutate | Target::Generate => "grad",
            Target::Csv => data::CSV.extension(),
            Target::Repl => "repl",
            Target::Arrays => {
                arrays::Kind::of_program(self.program.as_deref().unwrap_or("")).extension()
            }
        }
    }
}

/// What happened to the inputs of one target.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    pub inputs: u64,
    /// Programs that compiled.
    pub compiled: u64,
    /// Inputs rejected with diagnostics or an `Error` (front end, autodiff,
    /// data loading, training setup).
    pub diagnostics: u64,
    /// Gradient programs built.
    pub gradients: u64,
    /// Programs run on every engine (forward and gradient each count).
    pub runs: u64,
    /// Runs that faulted the same way on every engine.
    pub faults: u64,
    /// Hessians computed on the interpreter and the JIT.
    pub hessians: u64,
    /// Programs too large to run in a few milliseconds, compiled only.
    pub skipped: u64,
    /// Data files loaded (the rest are `diagnostics`).
    pub loaded: u64,
    /// Training runs on a loaded data set.
    pub trained: u64,
    /// Disagreements between engines, or broken diagnostics.
    pub mismatches: u64,
    pub panics: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.inputs += o.inputs;
        self.compiled += o.compiled;
        self.diagnostics += o.diagnostics;
        self.gradients += o.gradients;
        self.runs += o.runs;
        self.faults += o.faults;
        self.hessians += o.hessians;
        self.skipped += o.skipped;
        self.loaded += o.loaded;
        self.trained += o.trained;
        self.mismatches += o.mismatches;
        self.panics += o.panics;
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} inputs, {} compiled, {} diagnostics, {} gradients, {} engine runs, {} faults, \
             {} Hessians, {} too large, {} data loaded, {} trained; mismatches = {}, panics = {}",
            self.inputs,
            self.compiled,
            self.diagnostics,
            self.gradients,
            self.runs,
            self.faults,
            self.hessians,
            self.skipped,
            self.loaded,
            self.trained,
            self.mismatches,
            self.panics
        )
    }
}

/// A failure: the file the input was written to and what went wrong.
#[derive(Clone, Debug)]
pub struct Failure {
    pub file: PathBuf,
    pub message: String,
}

/// How a fuzzing session runs.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    /// Inputs in all, shared round-robin by the targets.
    pub inputs: u64,
    /// Stop after this long, whatever the count.
    pub seconds: Option<f64>,
    /// Longest time one input may take before the process is aborted.
    pub timeout: Duration,
    pub targets: Vec<Target>,
    /// Print progress.
    pub verbose: bool,
    /// Keep the input being run in `in-progress.*`, so that one that kills
    /// the process (a crash in machine code) is not lost.
    pub keep_current: bool,
}

/// The directory failures are written to: `target/fuzz-failures/`.
pub fn failures_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("fuzz-failures")
}

/// The seed of input `index` of `target` in a session seeded with `seed`.
fn input_seed(seed: u64, target: Target, index: u64) -> u64 {
    rng::mix(rng::mix(seed ^ ((target as u64) << 56)) ^ index)
}

/// Produces input `index` of `target`.
fn make_input(target: Target, seed: u64, corpus: &mutate::Corpus) -> Input {
    let mut r = R::new(seed);
    match target {
        Target::Mutate => Input {
            target,
            bytes: corpus.mutated(&mut r),
            program: None,
        },
        Target::Generate => Input {
            target,
            bytes: gen::program(&mut r).into_bytes(),
            program: None,
        },
        Target::Repl => Input {
            target,
            bytes: corpus.mutated_script(&mut r),
            program: None,
        },
        Target::Csv => {
            let (bytes, program) = data::CSV.input(&mut r);
            Input {
                target,
                bytes,
                program: Some(program),
            }
        }
        Target::Arrays => {
            let (bytes, program) = arrays::input(&mut r);
            Input {
                target,
                bytes,
                program: Some(program),
            }
        }
    }
}

/// Runs one input through its target. `Err` is a failure that is not a
/// panic: engines that disagree, a diagnostic outside its source.
pub fn run_input(input: &Input, counts: &mut Counts, scratch: &Path) -> Result<(), String> {
    counts.inputs += 1;
    match input.target {
        Target::Mutate | Target::Generate => pipeline::check_source(&input.bytes, counts),
        Target::Repl => repl::check_script(&input.bytes, counts),
        Target::Csv => data::check(
            &data::CSV,
            &input.bytes,
            input.program.as_deref().unwrap_or(""),
            scratch,
            counts,
        ),
        Target::Arrays => {
            let program = input.program.as_deref().unwrap_or("");
            data::check(
                arrays::format(arrays::Kind::of_program(program)),
                &input.bytes,
                program,
                scratch,
                counts,
            )
        }
    }
}

// ---------------------------------------------------------------------------
// Failure files.

/// Writes `input` as `target/fuzz-failures/NAME.EXT`, with `NAME.EXT.txt`
/// saying what happened, and for a data file its program as `NAME.EXT.grad`.
fn write_failure(input: &Input, name: &str, message: &str) -> PathBuf {
    let dir = failures_dir();
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join(format!("{name}.{}", input.extension()));
    let _ = std::fs::write(&file, &input.bytes);
    if let Some(p) = &input.program {
        let _ = std::fs::write(sidecar(&file, "grad"), p);
    }
    let replay = format!(
        "GRADC_FUZZ_REPLAY={} cargo test --test it fuzz::replay -- --ignored --nocapture",
        file.display()
    );
    let _ = std::fs::write(
        sidecar(&file, "txt"),
        format!(
            "target: {}\n{message}\n\nreplay: {replay}\n",
            input.target.name()
        ),
    );
    file
}

/// `FILE.EXT` beside `file`.
fn sidecar(file: &Path, ext: &str) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Removes the `in-progress.*` files of every target.
fn remove_in_progress() {
    let in_progress = failures_dir().join("in-progress");
    for ext in [
        "grad", "grad.txt", "csv", "csv.txt", "csv.grad", "repl", "repl.txt", "npy", "npy.txt",
        "npy.grad", "npz", "npz.txt", "npz.grad", "idx", "idx.txt", "idx.grad",
    ] {
        let _ = std::fs::remove_file(sidecar(&in_progress, ext));
    }
}

/// The per-process scratch directory data files are written to.
fn scratch_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "fuzz-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

// ---------------------------------------------------------------------------
// Sessions.

/// The outcome of a session.
pub struct Session {
    pub counts: Vec<(Target, Counts)>,
    pub failures: Vec<Failure>,
}

/// Runs a session on a thread of its own (8 MiB of stack, as a main thread
/// has), so that its panics can be told from other tests'.
pub fn fuzz(config: &Config) -> Session {
    let config = config.clone();
    std::thread::Builder::new()
        .name("fuzz".into())
        .stack_size(8 << 20)
        .spawn(move || session(&config))
        .expect("a fuzzing thread")
        .join()
        .unwrap_or_else(|p| panic!("the fuzzer itself panicked: {}", panic_text(&*p)))
}

fn session(config: &Config) -> Session {
    let corpus = mutate::Corpus::load();
    let scratch = scratch_dir();
    let _quiet = QuietPanics::install();
    let watchdog = Watchdog::start(config.timeout);
    let start = Instant::now();
    let mut counts: Vec<(Target, Counts)> = config
        .targets
        .iter()
        .map(|&t| (t, Counts::default()))
        .collect();
    let mut failures = Vec::new();
    let mut last_report = Instant::now();
    let mut last_extension = None;
    for i in 0..config.inputs {
        if config
            .seconds
            .is_some_and(|s| start.elapsed().as_secs_f64() >= s)
        {
            break;
        }
        let k = (i % counts.len() as u64) as usize;
        let target = counts[k].0;
        let index = i / counts.len() as u64;
        let seed = input_seed(config.seed, target, index);
        let name = format!("{}-{:016x}-{index}", target.name(), config.seed);
        let input = make_input(target, seed, &corpus);
        if config.keep_current {
            if last_extension != Some(input.extension()) {
                remove_in_progress();
                last_extension = Some(input.extension());
            }
            write_failure(
                &input,
                "in-progress",
                &format!("{name}: being run; if the run is over, the process died on it"),
            );
        }
        watchdog.arm(&input, &name);
        QUIET.with(|q| q.set(true));
        let c = &mut counts[k].1;
        let result = catch_unwind(AssertUnwindSafe(|| run_input(&input, c, &scratch)));
        QUIET.with(|q| q.set(false));
        watchdog.disarm();
        let message = match result {
            Ok(Ok(())) => None,
            Ok(Err(m)) => {
                counts[k].1.mismatches += 1;
                Some(m)
            }
            Err(payload) => {
                counts[k].1.panics += 1;
                let m = LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_else(|| panic_text(&*payload));
                Some(format!("panic: {m}"))
            }
        };
        if let Some(message) = message {
            let file = write_failure(&input, &name, &message);
            if config.verbose {
                eprintln!("fuzz: FAILURE {}: {message}", file.display());
            }
            failures.push(Failure { file, message });
        }
        if config.verbose && last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            let done: u64 = counts.iter().map(|(_, c)| c.inputs).sum();
            eprintln!(
                "fuzz: {done} inputs in {:.0} s, {} failures",
                start.elapsed().as_secs_f64(),
                failures.len()
            );
        }
    }
    if config.keep_current {
        remove_in_progress();
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if config.verbose {
        eprintln!(
            "fuzz: seed {:#x}, {:.1} s",
            config.seed,
            start.elapsed().as_secs_f64()
        );
        let mut total = Counts::default();
        for (t, c) in &counts {
            eprintln!("fuzz: {:>8}: {c}", t.name());
            total.add(c);
        }
        eprintln!("fuzz: {:>8}: {total}", "total");
    }
    Session { counts, failures }
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let text = std::env::var(name).ok()?;
    let text = text.trim().replace('_', "");
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16)
            .ok()
            .and_then(|n| n.to_string().parse().ok()),
        None => text.parse().ok(),
    };
    Some(parsed.unwrap_or_else(|| panic!("{name}: not a number: {text}")))
}

fn default_timeout() -> Duration {
    let secs = env_number::<f64>("GRADC_FUZZ_TIMEOUT").unwrap_or(if cfg!(debug_assertions) {
        60.0
    } else {
        10.0
    });
    Duration::from_secs_f64(secs)
}

fn assert_no_failures(session: &Session) {
    let total: u64 = session.counts.iter().map(|(_, c)| c.inputs).sum();
    assert!(
        session.failures.is_empty(),
        "{} of {total} fuzz inputs failed (inputs in {}):\n{}",
        session.failures.len(),
        failures_dir().display(),
        session
            .failures
            .iter()
            .map(|f| format!("{}: {}", f.file.display(), f.message))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A short fixed-seed run of every target, part of `cargo test`.
#[test]
fn smoke() {
    let per_target = if cfg!(debug_assertions) { 80 } else { 600 };
    let config = Config {
        seed: 0x5eed,
        inputs: per_target * Target::ALL.len() as u64,
        seconds: None,
        timeout: default_timeout(),
        targets: Target::ALL.to_vec(),
        verbose: false,
        keep_current: false,
    };
    let session = fuzz(&config);
    assert_no_failures(&session);
    for (t, c) in &session.counts {
        assert_eq!(c.inputs, per_target, "{}", t.name());
        match t {
            // Most generated programs compile and run.
            Target::Generate => assert!(c.runs >= per_target, "{}: {c}", t.name()),
            Target::Mutate => assert!(c.compiled > 0 && c.diagnostics > 0, "{}: {c}", t.name()),
            Target::Csv | Target::Arrays => {
                assert!(c.loaded > 0 && c.diagnostics > 0, "{}: {c}", t.name())
            }
            Target::Repl => assert!(c.compiled > 0 && c.diagnostics > 0, "{}: {c}", t.name()),
        }
    }
}

/// The developer's run: `GRADC_FUZZ_INPUTS` (100000) inputs,
/// `GRADC_FUZZ_SECONDS` at most, from `GRADC_FUZZ_SEED`.
#[test]
#[ignore = "long: cargo test --release --test it fuzz::long -- --ignored --nocapture"]
fn long() {
    let seed = env_number("GRADC_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let config = Config {
        seed,
        inputs: env_number("GRADC_FUZZ_INPUTS").unwrap_or(100_000),
        seconds: env_number("GRADC_FUZZ_SECONDS"),
        timeout: default_timeout(),
        targets: Target::ALL.to_vec(),
        verbose: true,
        keep_current: true,
    };
    eprintln!(
        "fuzz: seed {seed:#x} (GRADC_FUZZ_SEED), {} inputs (GRADC_FUZZ_INPUTS), cap {} (GRADC_FUZZ_SECONDS), timeout {:.0} s; failures go to {}",
        config.inputs,
        config
            .seconds
            .map_or("none".to_string(), |s| format!("{s} s")),
        config.timeout.as_secs_f64(),
        failures_dir().display()
    );
    let session = fuzz(&config);
    assert_no_failures(&session);
}

/// Replays failure files: `GRADC_FUZZ_REPLAY` names one, or a directory of
/// them. Panics propagate, with their backtrace.
#[test]
#[ignore = "GRADC_FUZZ_REPLAY=FILE cargo test --test it fuzz::replay -- --ignored --nocapture"]
fn replay() {
    let path = PathBuf::from(
        std::env::var("GRADC_FUZZ_REPLAY").expect("GRADC_FUZZ_REPLAY: a failure file or directory"),
    );
    let mut files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(&path)
            .expect("the directory")
            .map(|e| e.expect("an entry").path())
            .collect()
    } else {
        vec![path]
    };
    files.sort();
    let scratch = scratch_dir();
    let mut failed = Vec::new();
    for file in files {
        let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
        let target = match ext {
            "grad" if file.with_extension("").extension().is_none() => Target::Mutate,
            "csv" => Target::Csv,
            "npy" | "npz" | "idx" => Target::Arrays,
            "repl" => Target::Repl,
            _ => continue,
        };
        let bytes = std::fs::read(&file).expect("the failure file");
        let program = matches!(target, Target::Csv | Target::Arrays).then(|| {
            std::fs::read_to_string(sidecar(&file, "grad")).expect("the program beside the data")
        });
        let input = Input {
            target,
            bytes,
            program,
        };
        let mut counts = Counts::default();
        eprintln!("replay {}", file.display());
        match run_input(&input, &mut counts, &scratch) {
            Ok(()) => eprintln!("  passes: {counts}"),
            Err(m) => {
                eprintln!("  FAILS: {m}");
                failed.push(file.display().to_string());
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(failed.is_empty(), "failing: {failed:?}");
}

/// The generators are deterministic: the same seed gives the same inputs.
#[test]
fn inputs_depend_only_on_the_seed() {
    let corpus = mutate::Corpus::load();
    for target in Target::ALL {
        for index in 0..5 {
            let seed = input_seed(7, target, index);
            let a = make_input(target, seed, &corpus);
            let b = make_input(target, seed, &corpus);
            assert_eq!(a.bytes, b.bytes);
            assert_eq!(a.program, b.program);
        }
    }
    assert_ne!(
        make_input(
            Target::Generate,
            input_seed(7, Target::Generate, 0),
            &corpus
        )
        .bytes,
        make_input(
            Target::Generate,
            input_seed(7, Target::Generate, 1),
            &corpus
        )
        .bytes
    );
}

/// A panic on a fuzzing thread is caught, prints nothing, and its message
/// and place are kept for the failure file.
#[test]
fn a_panic_while_fuzzing_is_caught_quietly() {
    let (caught, message) = std::thread::spawn(|| {
        let _quiet = QuietPanics::install();
        QUIET.with(|q| q.set(true));
        let r = catch_unwind(|| -> () { panic!("boom {}", 7) });
        QUIET.with(|q| q.set(false));
        (r.is_err(), LAST_PANIC.with(|p| p.borrow_mut().take()))
    })
    .join()
    .unwrap();
    assert!(caught);
    let message = message.expect("the hook kept the message");
    assert!(message.starts_with("boom 7 at "), "{message}");
    assert!(message.contains("fuzz/mod.rs"), "{message}");
}
