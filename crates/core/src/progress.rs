//! Progress for long work (training, surfaces): a bar with an ETA on a terminal, plain
//! rate-limited lines when stderr is a file or a pipe (CI logs stay readable).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often plain-text progress prints a line at most.
const PLAIN_INTERVAL: Duration = Duration::from_secs(10);

/// A progress reporter for `total` steps of one task.
pub struct Progress {
    label: String,
    total: u64,
    start: Instant,
    /// Steps already done when this reporter started (a resumed task): the ETA only counts the
    /// rate of the steps done since.
    resumed_from: u64,
    bar: Option<ProgressBar>,
    plain: Mutex<PlainState>,
}

struct PlainState {
    position: u64,
    message: String,
    last_print: Option<Instant>,
}

impl Progress {
    /// Starts reporting on `label`, already `done` of `total` steps in.
    pub fn new(label: impl Into<String>, total: u64, done: u64) -> Self {
        let label = label.into();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:.bold} [{bar:28.cyan/blue}] {pos}/{len} {msg} ({elapsed} elapsed, ETA {eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(label.clone());
            bar.set_position(done);
            bar.reset_eta();
            bar
        });
        Self {
            label,
            total,
            start: Instant::now(),
            resumed_from: done,
            bar,
            plain: Mutex::new(PlainState {
                position: done,
                message: String::new(),
                last_print: None,
            }),
        }
    }

    /// Records that `position` of the steps are done, with a short status message.
    pub fn update(&self, position: u64, message: impl Into<String>) {
        let message = message.into();
        if let Some(bar) = &self.bar {
            bar.set_position(position);
            bar.set_message(message);
            return;
        }
        let mut state = self.plain.lock().expect("progress lock");
        state.position = position;
        state.message = message;
        let due = state
            .last_print
            .is_none_or(|t| t.elapsed() >= PLAIN_INTERVAL);
        if due || position == self.total {
            state.last_print = Some(Instant::now());
            eprintln!("{}", self.plain_line(&state));
        }
    }

    /// Estimated seconds left, from the rate since this reporter started.
    pub fn eta_seconds(&self, position: u64) -> Option<f64> {
        let done = position.saturating_sub(self.resumed_from);
        (done > 0).then(|| {
            let rate = done as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
            self.total.saturating_sub(position) as f64 / rate
        })
    }

    fn plain_line(&self, state: &PlainState) -> String {
        let eta = self
            .eta_seconds(state.position)
            .map(|s| format!("ETA {}", format_duration(s)))
            .unwrap_or_else(|| "ETA ?".into());
        format!(
            "{} {}/{} {} ({} elapsed, {eta})",
            self.label,
            state.position,
            self.total,
            state.message,
            format_duration(self.start.elapsed().as_secs_f64())
        )
    }

    /// Ends the task with a final message.
    pub fn finish(&self, message: impl Into<String>) {
        let message = message.into();
        match &self.bar {
            Some(bar) => bar.finish_with_message(message),
            None => eprintln!(
                "{} done: {message} ({})",
                self.label,
                format_duration(self.start.elapsed().as_secs_f64())
            ),
        }
    }
}

/// Formats seconds as `1h02m`, `3m05s` or `12.3s`.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s >= 3600.0 {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    } else if s >= 60.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.1}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(12.34), "12.3s");
        assert_eq!(format_duration(185.0), "3m05s");
        assert_eq!(format_duration(3720.0), "1h02m");
    }

    #[test]
    fn eta_counts_only_work_done_since_resume() {
        let p = Progress::new("test", 100, 50);
        assert!(p.eta_seconds(50).is_none());
        std::thread::sleep(Duration::from_millis(20));
        let eta = p.eta_seconds(75).unwrap();
        // 25 steps in >= 20 ms, 25 left: about the elapsed time again, not a third of it.
        assert!(eta >= 0.015, "eta {eta}");
    }
}
