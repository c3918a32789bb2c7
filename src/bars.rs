//! Progress bars (indicatif) for long interactive work — `rebuild`, `ingest` of many files,
//! `targets import` — drawn on stderr only when stderr is a terminal; otherwise hidden, so a
//! daemon's or a script's logs stay clean. They only show; nothing depends on them.

use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};
use std::io::IsTerminal;

/// A bar of `len` steps labelled `what` (Chinese: it is for the user), or a hidden one when
/// stderr is not a terminal.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    // Gone from the terminal once done or dropped (an early return included).
    let bar = ProgressBar::new(len).with_finish(ProgressFinish::AndClear);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:32}] {human_pos}/{human_len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_a_terminal_the_bar_is_hidden() {
        // Under `cargo test` stderr is captured (a pipe), as it is for the daemon's logs.
        if !std::io::stderr().is_terminal() {
            assert!(bar(10, "测试").is_hidden());
        }
    }
}
