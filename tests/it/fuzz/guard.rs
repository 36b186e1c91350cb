//! Panics while fuzzing: a hook that is quiet on fuzzing threads and keeps
//! the message, and a watchdog for inputs that run too long.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{write_failure, Input};

thread_local! {
    pub(super) static QUIET: Cell<bool> = const { Cell::new(false) };
    pub(super) static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub(super) type Hook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// The hook that was installed before the first fuzzing session, and how
/// many sessions are running.
pub(super) static HOOK: Mutex<(usize, Option<Arc<Hook>>)> = Mutex::new((0, None));

/// While alive, panics on threads marked [`QUIET`] print nothing (their
/// message and place are kept for the failure report); other threads' go to
/// the hook that was there before, which is put back at the end.
pub(super) struct QuietPanics;

impl QuietPanics {
    pub(super) fn install() -> QuietPanics {
        let mut h = HOOK.lock().unwrap_or_else(|e| e.into_inner());
        if h.0 == 0 {
            let previous: Arc<Hook> = Arc::new(std::panic::take_hook());
            h.1 = Some(previous.clone());
            std::panic::set_hook(Box::new(move |info| {
                if QUIET.with(Cell::get) {
                    let place = info
                        .location()
                        .map(|l| format!(" at {}:{}", l.file(), l.line()))
                        .unwrap_or_default();
                    let text = panic_text(info.payload());
                    LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{text}{place}")));
                } else {
                    previous(info);
                }
            }));
        }
        h.0 += 1;
        QuietPanics
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        let mut h = HOOK.lock().unwrap_or_else(|e| e.into_inner());
        h.0 -= 1;
        if h.0 == 0 {
            if let Some(previous) = h.1.take() {
                // Our hook holds the other reference; drop it first.
                drop(std::panic::take_hook());
                match Arc::try_unwrap(previous) {
                    Ok(hook) => std::panic::set_hook(hook),
                    Err(shared) => std::panic::set_hook(Box::new(move |info| shared(info))),
                }
            }
        }
    }
}

pub(super) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(a panic without a message)".to_string())
}

// ---------------------------------------------------------------------------
// Hangs: a watchdog thread.

pub(super) struct Armed {
    since: Instant,
    input: Input,
    name: String,
}

/// Aborts the process, after writing the input, when one input runs longer
/// than the timeout.
pub(super) struct Watchdog {
    armed: Arc<Mutex<Option<Armed>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    pub(super) fn start(timeout: Duration) -> Watchdog {
        let armed: Arc<Mutex<Option<Armed>>> = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (armed, stop) = (armed.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                    let guard = armed.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(a) = guard.as_ref() {
                        if a.since.elapsed() > timeout {
                            let message = format!(
                                "hang: still running after {:.1} s (timeout {:.0} s)",
                                a.since.elapsed().as_secs_f64(),
                                timeout.as_secs_f64()
                            );
                            let file = write_failure(&a.input, &a.name, &message);
                            eprintln!("fuzz: {message}; the input is {}; aborting", file.display());
                            std::process::abort();
                        }
                    }
                }
            })
        };
        Watchdog {
            armed,
            stop,
            thread: Some(thread),
        }
    }

    pub(super) fn arm(&self, input: &Input, name: &str) {
        *self.armed.lock().unwrap_or_else(|e| e.into_inner()) = Some(Armed {
            since: Instant::now(),
            input: input.clone(),
            name: name.to_string(),
        });
    }

    pub(super) fn disarm(&self) {
        *self.armed.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
