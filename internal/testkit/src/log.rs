//! `TEST_LOG`: the server's log in a test's output, on demand.
//!
//! Off by default, so a passing run stays quiet. Set, its value is a `RUST_LOG`-style filter.
//! libtest captures what a test prints and shows it when the test fails (or always, with
//! `--nocapture`), so `TEST_LOG=debug cargo test -p streamhub --test api chat::` shows the log
//! of the failing chat test next to its panic.

use std::{io::IsTerminal as _, sync::Once};

use tracing_subscriber::EnvFilter;

/// The environment variable holding the filter.
pub const TEST_LOG: &str = "TEST_LOG";

/// The `TEST_LOG` filter, when it is set and not empty.
pub(crate) fn filter() -> Option<String> {
    std::env::var(TEST_LOG)
        .ok()
        .filter(|filter| !filter.trim().is_empty())
}

/// With `TEST_LOG` set, installs a global subscriber that writes to the test's captured
/// output, filtered by its value. Once per test process, and never over a subscriber the test
/// installed itself (`tests/otlp.rs` installs its own). [`crate::spawn_app`] calls it.
pub fn init_test_log() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let Some(directives) = filter() else {
            return;
        };
        let filter = EnvFilter::try_new(&directives)
            .unwrap_or_else(|err| panic!("{TEST_LOG}={directives:?} is not a filter: {err}"));
        // Captured output is shown verbatim; colours only for a person at a terminal.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .with_ansi(std::io::stdout().is_terminal())
            .try_init();
    });
}
