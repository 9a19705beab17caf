//! A one-line progress bar on standard error, for uploads and downloads.
//!
//! Shown only when standard error is a terminal, so logs and pipes never fill with carriage
//! returns. Redrawn at most ten times a second: a fast local transfer would otherwise spend
//! its time drawing.

use std::{
    io::{IsTerminal as _, Write as _},
    time::{Duration, Instant},
};

/// Shortest time between two redraws.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// Width of the bar itself, in cells.
const BAR_CELLS: u64 = 30;

/// A progress bar, or nothing when standard error is not a terminal.
#[derive(Debug)]
pub(crate) struct Progress {
    label: String,
    /// Unknown until the server says (a download learns it from its last chunk).
    total: Option<u64>,
    last_drawn: Option<Instant>,
}

impl Progress {
    /// A bar for `total` bytes (a plain counter when unknown), `None` when nobody would see it.
    pub(crate) fn start(label: &str, total: Option<u64>) -> Option<Self> {
        std::io::stderr().is_terminal().then(|| Self {
            label: label.to_owned(),
            total,
            last_drawn: None,
        })
    }

    /// Learns the total once the server has told it.
    pub(crate) fn set_total(&mut self, total: u64) {
        self.total = Some(total);
    }

    /// Shows `done` bytes out of the total, unless the last redraw was very recent.
    pub(crate) fn update(&mut self, done: u64) {
        let now = Instant::now();
        if self
            .last_drawn
            .is_some_and(|at| now.duration_since(at) < REDRAW_EVERY)
        {
            return;
        }
        self.last_drawn = Some(now);
        self.draw(done);
    }

    /// Draws the final state and ends the line.
    pub(crate) fn finish(mut self, done: u64) {
        self.draw(done);
        self.last_drawn = None;
        eprintln!();
    }

    fn draw(&self, done: u64) {
        let line = render(&self.label, done, self.total);
        let mut stderr = std::io::stderr().lock();
        // A failed redraw is not worth failing a transfer for.
        let _ = write!(stderr, "\r{line}\x1b[K").and_then(|()| stderr.flush());
    }
}

/// `label [#########---------]  45%  1.2 MiB / 2.7 MiB`, or `label 1.2 MiB` when the total
/// is unknown.
fn render(label: &str, done: u64, total: Option<u64>) -> String {
    let Some(total) = total else {
        return format!("{label} {}", bytes(done));
    };
    let done = done.min(total);
    // An empty file is complete from the start.
    let filled = done
        .saturating_mul(BAR_CELLS)
        .checked_div(total)
        .unwrap_or(BAR_CELLS);
    let percent = done.saturating_mul(100).checked_div(total).unwrap_or(100);
    let filled = usize::try_from(filled).unwrap_or_default();
    let empty = usize::try_from(BAR_CELLS).unwrap_or_default() - filled;
    format!(
        "{label} [{}{}] {percent:>3}%  {} / {}",
        "#".repeat(filled),
        "-".repeat(empty),
        bytes(done),
        bytes(total)
    )
}

/// A byte count for people: `512 B`, `1.5 KiB`, `2.7 MiB`, `1.0 GiB`.
pub(crate) fn bytes(count: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if count < 1024 {
        return format!("{count} B");
    }
    let mut value = count as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_share_done() {
        assert_eq!(
            render("up", 0, Some(100)),
            "up [------------------------------]   0%  0 B / 100 B"
        );
        assert_eq!(
            render("up", 50, Some(100)),
            "up [###############---------------]  50%  50 B / 100 B"
        );
        assert_eq!(
            render("up", 3 << 20, Some(3 << 20)),
            "up [##############################] 100%  3.0 MiB / 3.0 MiB"
        );
        assert_eq!(
            render("empty", 0, Some(0)),
            "empty [##############################] 100%  0 B / 0 B"
        );
        assert_eq!(render("down", 1536, None), "down 1.5 KiB");
    }

    #[test]
    fn byte_counts_read_naturally() {
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(1 << 30), "1.0 GiB");
    }
}
