//! When a burst of taken files is over, and what runs after it. [`Burst`] is a plain state
//! machine in the manner of `core::settle`: it is told what happened (a file taken, a rebuild
//! done or failed, mail run) with `now` as a parameter, and says when the master is due, when
//! the scheduled mail is, and when to wake up; the tests drive it with a fake clock. It never
//! reads a clock or touches the disk. [`after_burst`] and [`mail_work`] are the actions (the
//! master rebuild, the mail tick) that the daemon runs when the machine says so.

use crate::config::Config;
use crate::ledger::Ledger;
use crate::mail::Transport;
use chrono::DateTime;
use chrono_tz::Tz;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A failed master rebuild is retried this much later.
pub const MASTER_RETRY: Duration = Duration::from_secs(30);
/// Scheduled mail (reminders, digest) and outbox retries are looked at this often, besides
/// after every burst.
pub const MAIL_EVERY: Duration = Duration::from_secs(300);
/// While a burst is open and nothing is settling, its end is checked this soon.
const QUIET_CHECK: Duration = Duration::from_millis(50);

/// The longest a burst may hold the master back (a file written forever must not): ten settle
/// periods, at least 10 s.
pub fn cap(settle: Duration) -> Duration {
    (settle * 10).max(Duration::from_secs(10))
}

/// Why a burst is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Nothing is settling any more.
    Quiet,
    /// Files are still settling, but the burst has held the master back as long as it may:
    /// they are taken after the rebuild.
    Cut,
}

/// Files taken since the last rebuild, and when the first of them was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Open {
    files: usize,
    since: Instant,
}

/// The burst state machine.
#[derive(Debug, Clone)]
pub struct Burst {
    cap: Duration,
    open: Option<Open>,
    /// A rebuild failed: when to try again.
    retry_at: Option<Instant>,
    /// When the scheduled mail is due, unless a burst holds it.
    next_mail: Instant,
}

impl Burst {
    /// No burst open; `cap` as given by [`cap`]; the first mail tick one period after `now`.
    pub fn new(cap: Duration, now: Instant) -> Burst {
        Burst {
            cap,
            open: None,
            retry_at: None,
            next_mail: now + MAIL_EVERY,
        }
    }

    /// The master needs a rebuild for `files` files taken (or none: it is missing, stale or
    /// from another day), unless a burst is open already.
    pub fn open(&mut self, files: usize, now: Instant) {
        self.open.get_or_insert(Open { files, since: now });
    }

    /// A file was taken: it joins the open burst, or opens one.
    pub fn file_taken(&mut self, now: Instant) {
        self.open
            .get_or_insert(Open {
                files: 0,
                since: now,
            })
            .files += 1;
    }

    /// Whether a rebuild is owed.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Files taken in the open burst.
    pub fn files(&self) -> usize {
        self.open.map_or(0, |o| o.files)
    }

    /// Whether the scheduled mail waits for the end of a burst (which runs the mail work
    /// itself). It does not wait while a failed rebuild waits to be retried: mail must not stop
    /// because the master cannot be written.
    fn holds_mail(&self) -> bool {
        self.open.is_some() && self.retry_at.is_none()
    }

    /// Whether the open burst has held the master back as long as it may: the daemon stops
    /// taking files and rebuilds first.
    pub fn overdue(&self, now: Instant) -> bool {
        self.retry_at.is_none()
            && self
                .open
                .is_some_and(|o| now.saturating_duration_since(o.since) >= self.cap)
    }

    /// Whether the open burst is over at `now`, given whether files are `settling` (on their
    /// way to being taken, see `Settler::settling`).
    pub fn end(&self, now: Instant, settling: bool) -> Option<End> {
        let open = self.open?;
        if self.retry_at.is_some_and(|t| t > now) {
            return None;
        }
        match settling {
            false => Some(End::Quiet),
            true if now.saturating_duration_since(open.since) >= self.cap => Some(End::Cut),
            true => None, // more of the burst is on its way
        }
    }

    /// The master was rebuilt (and the mail work ran).
    pub fn rebuilt(&mut self, now: Instant) {
        self.open = None;
        self.retry_at = None;
        self.next_mail = now + MAIL_EVERY;
    }

    /// The master could not be written (the mail work ran all the same): try again later.
    pub fn rebuild_failed(&mut self, now: Instant) {
        self.retry_at = Some(now + MASTER_RETRY);
        self.next_mail = now + MAIL_EVERY;
    }

    /// Whether the scheduled mail work is due.
    pub fn mail_due(&self, now: Instant) -> bool {
        !self.holds_mail() && now >= self.next_mail
    }

    /// The scheduled mail work ran.
    pub fn mail_ran(&mut self, now: Instant) {
        self.next_mail = now + MAIL_EVERY;
    }

    /// When the machine next wants a look: a rebuild retry, the mail tick (when `mail`), the
    /// end of the open burst.
    pub fn next_wakeup(&self, now: Instant, settling: bool, mail: bool) -> Option<Instant> {
        let mut at = self.retry_at;
        let mut consider = |t: Instant| at = Some(at.map_or(t, |a| a.min(t)));
        if mail && !self.holds_mail() {
            consider(self.next_mail);
        }
        if let Some(open) = self.open
            && self.retry_at.is_none()
        {
            // A burst ends when nothing is settling; check again soon, and by the cap.
            if !settling {
                consider(now + QUIET_CHECK);
            }
            consider(open.since + self.cap);
        }
        at
    }
}

/// What [`after_burst`] did.
#[derive(Debug, Default)]
pub struct BurstReport {
    /// Where the master was written.
    pub master: PathBuf,
}

/// The single integration point after a burst of files (and at the end of `--once`, and when
/// the date changes): rebuild the master workbook from the ledger, then run the mail work that
/// is due — whether or not the master could be written (receipts and rejection notices must
/// not wait for a master that cannot be written). Only a failed master is an error (the
/// caller logs it and retries later); mail failures are logged and stay in the outbox for the
/// next round.
pub fn after_burst(
    config: &Config,
    ledger: &mut Ledger,
    now: DateTime<Tz>,
    transport: &Transport,
) -> anyhow::Result<BurstReport> {
    let rebuilt = rebuild_outputs(config, ledger, now);
    mail_work(config, ledger, now, transport);
    rebuilt
}

/// [`after_burst`] without the mail work: the master, the units' progress workbooks and the
/// forms (the daemon hands the mail work to its mail thread).
pub fn rebuild_outputs(
    config: &Config,
    ledger: &mut Ledger,
    now: DateTime<Tz>,
) -> anyhow::Result<BurstReport> {
    let rebuilt = crate::master::rebuild(config, ledger, now);
    if let Ok(written) = &rebuilt
        && *written != config.master_path()
    {
        tracing::warn!(
            master = %config.master_path().display(),
            written = %written.display(),
            "the master is held open or read-only; the new version was written beside it"
        );
    }
    // Each unit's own workbook follows the master; failures of one unit are logged there.
    if let Err(e) = crate::progress::publish_all(config, ledger, now, false) {
        tracing::warn!(error = %e, "the units' progress workbooks were not written");
    }
    Ok(BurstReport { master: rebuilt? })
}

/// Keep the form of the month now due in every unit's 报表模板 folder; failures are logged.
pub fn publish_forms(config: &Config, now: DateTime<Tz>) {
    for (unit, result) in crate::forms::publish_all(config, now) {
        match result {
            Ok(published) => tracing::debug!(%unit, ?published, "form"),
            Err(e) => tracing::warn!(%unit, error = %e, "the form was not written"),
        }
    }
}

/// Store the scheduled mail that is due (催办, 未报送提醒, 周报), then send what is queued and
/// due. Failures are logged; messages stay in the outbox.
pub fn mail_work(config: &Config, ledger: &mut Ledger, now: DateTime<Tz>, transport: &Transport) {
    match crate::mail::schedule(config, ledger, now, false) {
        Ok(report) => {
            let new = report.planned.iter().filter(|p| p.new).count();
            if new > 0 {
                tracing::info!(messages = new, "scheduled mail stored");
            }
        }
        Err(e) => tracing::warn!(error = %e, "scheduled mail not evaluated"),
    }
    match crate::mail::send_due_with(config, ledger, now, transport) {
        Ok(report) if !report.deferred.is_empty() || !report.failed.is_empty() => {
            tracing::warn!(report = %report.summary(), "some mail was not delivered; it stays in the outbox")
        }
        Ok(report) if !report.sent.is_empty() => {
            tracing::info!(report = %report.summary(), "mail sent")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "mail not sent; it stays in the outbox"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_secs(2);

    /// A fake clock: milliseconds after an arbitrary start.
    struct Clock(Instant);

    impl Clock {
        fn new() -> Clock {
            Clock(Instant::now())
        }
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
    }

    #[test]
    fn the_cap_is_ten_settle_periods_and_at_least_ten_seconds() {
        assert_eq!(cap(Duration::from_secs(2)), Duration::from_secs(20));
        assert_eq!(cap(Duration::from_millis(300)), Duration::from_secs(10));
        assert_eq!(cap(Duration::from_secs(5)), Duration::from_secs(50));
    }

    #[test]
    fn a_burst_ends_when_nothing_is_settling() {
        let c = Clock::new();
        let mut b = Burst::new(cap(SETTLE), c.at(0));
        assert_eq!(b.end(c.at(0), false), None, "nothing taken, nothing owed");
        b.file_taken(c.at(100));
        b.file_taken(c.at(900));
        assert_eq!(b.files(), 2);
        assert_eq!(b.end(c.at(1_000), true), None, "more is on its way");
        assert_eq!(
            b.next_wakeup(c.at(1_000), true, false),
            Some(c.at(100) + cap(SETTLE)),
            "while files settle, only the cap wakes the loop for the burst"
        );
        assert_eq!(
            b.next_wakeup(c.at(1_000), false, false),
            Some(c.at(1_050)),
            "once quiet, the end is checked at once"
        );
        assert_eq!(b.end(c.at(1_050), false), Some(End::Quiet));
        b.rebuilt(c.at(1_200));
        assert!(!b.is_open());
        assert_eq!(b.files(), 0);
        assert_eq!(b.end(c.at(1_300), false), None);
    }

    #[test]
    fn a_burst_that_goes_on_is_cut_at_the_cap_counted_from_its_first_file() {
        let c = Clock::new();
        let cap = cap(SETTLE);
        let mut b = Burst::new(cap, c.at(0));
        b.file_taken(c.at(0));
        // A file every second, files always settling: the cap is counted from the first.
        for s in 1..20 {
            b.file_taken(c.at(s * 1_000));
            assert!(!b.overdue(c.at(s * 1_000)), "{s} s");
            assert_eq!(b.end(c.at(s * 1_000), true), None, "{s} s");
        }
        let just_before = c.at(0) + cap - Duration::from_millis(1);
        assert!(!b.overdue(just_before));
        assert_eq!(b.end(just_before, true), None);
        assert!(b.overdue(c.at(0) + cap));
        assert_eq!(b.end(c.at(0) + cap, true), Some(End::Cut));
        assert_eq!(b.files(), 20);
        b.rebuilt(c.at(20_500));
        // The rest opens a new burst with a cap of its own.
        b.file_taken(c.at(21_000));
        assert!(!b.overdue(c.at(21_000) + cap - Duration::from_millis(1)));
        assert_eq!(b.end(c.at(40_999), true), None);
        assert_eq!(b.end(c.at(41_000), true), Some(End::Cut));
    }

    /// The daemon's loop, in miniature: `n` files ready at once, each taking `per_file` to take
    /// in; files are taken until the burst is overdue, then the master is rebuilt (`rebuild`
    /// long). Returns the files in each rebuild.
    fn drive(n: usize, per_file: Duration, rebuild: Duration) -> Vec<(usize, End)> {
        let c = Clock::new();
        let mut b = Burst::new(cap(SETTLE), c.at(0));
        let mut now = c.at(0);
        let mut left = n;
        let mut rebuilds = Vec::new();
        while left > 0 || b.is_open() {
            while left > 0 && !b.overdue(now) {
                now += per_file;
                b.file_taken(now);
                left -= 1;
            }
            let end = b.end(now, left > 0).expect("over: quiet or cut");
            rebuilds.push((b.files(), end));
            now += rebuild;
            b.rebuilt(now);
        }
        rebuilds
    }

    #[test]
    fn fifty_files_make_one_rebuild_when_quick_and_are_cut_when_slow() {
        let ms = Duration::from_millis;
        assert_eq!(drive(50, ms(200), ms(500)), [(50, End::Quiet)]);
        // 0.5 s a file: 20 s of taking is the cap; the first file opened the burst.
        assert_eq!(
            drive(50, ms(500), ms(500)),
            [(41, End::Cut), (9, End::Quiet)]
        );
        assert_eq!(
            drive(50, ms(1_000), ms(500)),
            [(21, End::Cut), (21, End::Cut), (8, End::Quiet)]
        );
    }

    #[test]
    fn a_failed_rebuild_is_retried_later_and_does_not_hold_the_mail() {
        let c = Clock::new();
        let mut b = Burst::new(cap(SETTLE), c.at(0));
        b.file_taken(c.at(0));
        assert!(!b.mail_due(c.at(0) + MAIL_EVERY), "a burst holds the mail");
        b.rebuild_failed(c.at(100));
        assert!(b.is_open(), "the rebuild is still owed");
        assert!(!b.overdue(c.at(100) + cap(SETTLE)), "taking goes on");
        assert_eq!(b.end(c.at(200), false), None, "not before the retry");
        assert_eq!(
            b.next_wakeup(c.at(200), false, false),
            Some(c.at(100) + MASTER_RETRY)
        );
        assert_eq!(
            b.next_wakeup(c.at(200), false, true),
            Some(c.at(100) + MASTER_RETRY),
            "the retry comes before the mail"
        );
        assert!(b.mail_due(c.at(100) + MAIL_EVERY), "mail does not wait");
        assert_eq!(b.end(c.at(100) + MASTER_RETRY, false), Some(End::Quiet));
        b.file_taken(c.at(30_200));
        assert_eq!(b.files(), 2);
        b.rebuilt(c.at(30_300));
        assert!(!b.is_open());
        assert_eq!(b.end(c.at(60_000), false), None);
    }

    #[test]
    fn the_mail_tick_comes_every_period_and_after_each_rebuild() {
        let c = Clock::new();
        let mut b = Burst::new(cap(SETTLE), c.at(0));
        assert!(!b.mail_due(c.at(1_000)));
        assert_eq!(
            b.next_wakeup(c.at(1_000), false, true),
            Some(c.at(0) + MAIL_EVERY)
        );
        assert_eq!(b.next_wakeup(c.at(1_000), false, false), None, "--once");
        assert!(b.mail_due(c.at(0) + MAIL_EVERY));
        b.mail_ran(c.at(0) + MAIL_EVERY);
        assert!(!b.mail_due(c.at(0) + MAIL_EVERY));
        // A master owed at start (or on a new day) holds the mail until it is written.
        b.open(0, c.at(400_000));
        b.open(5, c.at(400_500));
        assert_eq!(b.files(), 0, "an open burst stays as it is");
        assert!(!b.mail_due(c.at(0) + MAIL_EVERY * 2));
        b.rebuilt(c.at(700_000));
        assert!(!b.mail_due(c.at(700_000) + MAIL_EVERY - Duration::from_millis(1)));
        assert!(b.mail_due(c.at(700_000) + MAIL_EVERY));
    }
}
