//! The daemon (`tally watch`): notice dropped files, wait until each has settled, take it
//! through intake, and rebuild the master once a burst of files is over. Its parts:
//! `source` (notify wrapped as `Watcher { Native, Poll }`, its events converted once into
//! `FsEvent`), `daemon` (the loop, start and stop, the state lock), `burst` (when a burst is
//! over and what runs after it), `settings` (`[watch]` in tally.toml); the settle rule is
//! the pure [`crate::core::settle`]. It never judges a return (intake's job), keeps its file
//! states through the ledger's API (no SQL here) and never writes outside intake, the master
//! and the mail.

mod burst;
mod daemon;
pub mod settings;
mod source;

use crate::core::settle::Timing;
use crate::settings::Environment;
use chrono::DateTime;
use chrono_tz::Tz;
use std::time::Duration;

pub use burst::{BurstReport, after_burst, mail_work};
pub use daemon::{Daemon, Stopper, Summary};
pub use settings::{Mode, WatchSettings};
pub use source::{FsEvent, Msg, WatchError, Watcher, convert, look_at};

/// How long after a failure a file intake could not take in is tried again when it does not
/// change (in every mode: the loop re-adds it on its own timer, events or no events).
pub const FAILED_RETRY: Duration = Duration::from_secs(300);

/// Seconds as a duration; callers have validated the value (config problems, flag parser).
pub fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

/// The clock for plan logic and records: `--now` fixed, or the wall clock read per file.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    Fixed(DateTime<Tz>),
    Wall(Tz),
}

impl Clock {
    pub fn now(&self) -> DateTime<Tz> {
        match self {
            Clock::Fixed(t) => *t,
            Clock::Wall(tz) => chrono::Utc::now().with_timezone(tz),
        }
    }
}

/// Everything the daemon is told, resolved once (flags over config).
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub poll_interval: Duration,
    pub rescan: Duration,
    pub timing: Timing,
    /// Process what is pending, then stop.
    pub once: bool,
    pub clock: Clock,
    /// A file intake could not take in is tried again this much later ([`FAILED_RETRY`];
    /// shorter only in tests).
    pub failed_retry: Duration,
    /// The environment, read once at start (SMTP overrides, test fault hooks).
    pub env: Environment,
}

impl Options {
    pub fn from_config(w: &WatchSettings, clock: Clock) -> Options {
        Options {
            mode: w.mode,
            poll_interval: secs(w.poll_interval_secs),
            rescan: secs(w.rescan_secs),
            timing: Timing::new(secs(w.settle_secs), secs(w.min_age_secs)),
            once: false,
            clock,
            failed_retry: FAILED_RETRY,
            env: Environment::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_config_defaults() {
        let w = WatchSettings::default();
        assert_eq!(w.mode, Mode::Auto);
        let o = Options::from_config(&w, Clock::Wall(chrono_tz::Asia::Shanghai));
        assert_eq!(o.poll_interval, Duration::from_secs(30));
        assert_eq!(o.rescan, Duration::from_secs(60));
        assert_eq!(o.timing.settle, Duration::from_secs(2));
        assert_eq!(o.timing.min_age, Duration::from_secs(1));
    }

    #[test]
    fn the_wall_clock_moves_and_a_fixed_one_does_not() {
        let fixed =
            crate::core::calendar::parse_now("2020-07-01", chrono_tz::Asia::Shanghai).unwrap();
        assert_eq!(Clock::Fixed(fixed).now(), fixed);
        let wall = Clock::Wall(chrono_tz::Asia::Shanghai);
        let a = wall.now();
        std::thread::sleep(Duration::from_millis(5));
        assert!(wall.now() > a);
    }
}
