//! Progress on stderr while the demo prepares: a spinner or bar per step on
//! a terminal, one line per step otherwise, each with the time it took.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress on stderr: spinners and bars on a terminal, plain lines otherwise.
pub(super) struct Progress {
    terminal: bool,
}

impl Progress {
    pub(super) fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
        }
    }

    pub(super) fn step(&self, message: &str) -> Step {
        let bar = if self.terminal {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                bar.set_style(style);
            }
            bar.set_message(message.to_string());
            bar.enable_steady_tick(Duration::from_millis(100));
            Some(bar)
        } else {
            eprintln!("periscope demo: {message}...");
            None
        };
        Step {
            bar,
            started: Instant::now(),
        }
    }

    pub(super) fn bar(&self, message: &str, total: u64) -> Step {
        let bar = if self.terminal {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{msg}\n  [{bar:40}] {pos}/{len} ({eta} left)")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(message.to_string());
            Some(bar)
        } else {
            eprintln!("periscope demo: {message}...");
            None
        };
        Step {
            bar,
            started: Instant::now(),
        }
    }
}

/// One step in progress.
pub(super) struct Step {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Step {
    pub(super) fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    pub(super) fn done(self, message: impl AsRef<str>) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!(
            "periscope demo: {} ({:.1}s)",
            message.as_ref(),
            self.started.elapsed().as_secs_f64()
        );
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
