//! `[mail]` in tally.toml: where mail goes, who gets it, when scheduled mail is sent and how
//! failed sends are retried; validated here (addresses with lettre, the SMTP URL with `url`).
//! Parsed with the rest of the file by `crate::config`.

use crate::core::plan::{Plan, Problem, Seg};
use crate::core::remind::{Cadence, Cycle, DateSpan, QuietHours, Schedule, parse_clock};
use crate::mail::url::SmtpUrl;
use chrono::{Duration, NaiveTime, Weekday};
use lettre::message::Mailbox;
use serde::Deserialize;
use std::path::PathBuf;

/// `[mail]`: where mail goes, who gets it and when scheduled mail is sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    /// SMTP server (`smtps://user@host:465`, `smtp+starttls://host:587`, `smtp://localhost:25`);
    /// absent: every message is written as an .eml file into the outbox folder.
    pub smtp_url: Option<String>,
    /// File holding the SMTP password (relative to the config's folder); env
    /// `TALLY_SMTP_PASSWORD` wins. Never the password itself.
    pub smtp_password_file: Option<PathBuf>,
    /// Allow unencrypted `smtp://` to a host other than this machine.
    pub allow_plain: bool,
    /// Sender: `名称 <address>` or a bare address.
    pub from: String,
    /// Where replies go (default: the sender).
    pub reply_to: Option<String>,
    /// The bureau's addresses: the digest and alerts go here.
    pub bureau: Vec<String>,
    /// No scheduled mail (reminders, digest) in this span of local time, e.g. "20:00-08:00".
    pub quiet_hours: Option<QuietHours>,
    /// Days without scheduled mail: "2020-10-01" or a span "2020-10-01..2020-10-08".
    pub skip_dates: Vec<DateSpan>,
    /// Days after the plan year during which reminders go on (late returns still count);
    /// after them reminders stop and one final digest is sent.
    pub grace_days: u32,
    /// How long the SMTP server may take to answer any one step (connecting, a command, the
    /// message) before the attempt is given up and retried later.
    pub timeout_secs: u64,
    pub reminders: ReminderSettings,
    pub digest: DigestSettings,
    pub retry: RetrySettings,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            smtp_url: None,
            smtp_password_file: None,
            allow_plain: false,
            from: "tally <tally@localhost>".into(),
            reply_to: None,
            bureau: Vec::new(),
            quiet_hours: None,
            skip_dates: Vec::new(),
            grace_days: 31,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            reminders: ReminderSettings::default(),
            digest: DigestSettings::default(),
            retry: RetrySettings::default(),
        }
    }
}

/// `[mail] timeout_secs` when not given.
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// `[mail.reminders]`: 催办 to lagging units and 未报送提醒 before a deadline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReminderSettings {
    pub enabled: bool,
    /// Weekly on this day ("monday", "mon", "周一", "星期一")…
    pub weekday: Option<Day>,
    /// …or every N days from 1 January of the plan year.
    pub every_days: Option<u32>,
    /// Local time at which a reminder window opens ("09:00"); also the earliest time of day
    /// for deadline reminders.
    pub time: ClockTime,
    /// After this many reminders in a row the next ones copy the unit's leader (0: never).
    pub leader_after: u32,
    /// 未报送提醒: daily on the last N days up to a month's deadline (0: never).
    pub deadline_days: u32,
}

impl Default for ReminderSettings {
    fn default() -> Self {
        ReminderSettings {
            enabled: true,
            weekday: None,
            every_days: None,
            time: ClockTime(NaiveTime::from_hms_opt(9, 0, 0).expect("valid time")),
            leader_after: 2,
            deadline_days: 3,
        }
    }
}

/// `[mail.digest]`: 周报 to the bureau.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DigestSettings {
    pub enabled: bool,
    pub weekday: Option<Day>,
    pub every_days: Option<u32>,
    pub time: ClockTime,
}

impl Default for DigestSettings {
    fn default() -> Self {
        DigestSettings {
            enabled: true,
            weekday: None,
            every_days: None,
            time: ClockTime(NaiveTime::from_hms_opt(8, 30, 0).expect("valid time")),
        }
    }
}

/// `[mail.retry]`: transient failures are retried after backoff × 2^(attempt−1), at most
/// `max_backoff_seconds` apart, `max_attempts` times in all; then the message is failed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    pub max_attempts: u32,
    pub backoff_seconds: u64,
    pub max_backoff_seconds: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 50,
            backoff_seconds: 60,
            max_backoff_seconds: 3600,
        }
    }
}

impl RetrySettings {
    /// Delay before the attempt after `attempts` failed ones.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let secs = self
            .backoff_seconds
            .saturating_mul(1u64 << exp)
            .min(self.max_backoff_seconds);
        Duration::seconds(secs.min(i64::MAX as u64) as i64)
    }
}

impl ReminderSettings {
    pub fn cadence(&self) -> Cadence {
        cadence(self.weekday, self.every_days)
    }
}

impl DigestSettings {
    pub fn cadence(&self) -> Cadence {
        cadence(self.weekday, self.every_days)
    }
}

fn cadence(weekday: Option<Day>, every_days: Option<u32>) -> Cadence {
    match (every_days, weekday) {
        (Some(n), _) => Cadence::EveryDays(n.max(1)),
        (None, Some(d)) => Cadence::Weekly(d.0),
        (None, None) => Cadence::Weekly(Weekday::Mon),
    }
}

/// A local time of day written "HH:MM".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ClockTime(pub NaiveTime);

impl TryFrom<String> for ClockTime {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        parse_clock(&s).map(ClockTime)
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Day(pub Weekday);

impl TryFrom<String> for Day {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let t = s.trim().to_lowercase();
        let zh = ["一", "二", "三", "四", "五", "六", "日"];
        let days = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ];
        if let Ok(d) = t.parse::<Weekday>() {
            return Ok(Day(d));
        }
        for (name, day) in zh.iter().zip(days) {
            if t == format!("周{name}") || t == format!("星期{name}") {
                return Ok(Day(day));
            }
        }
        if t == "周天" || t == "星期天" {
            return Ok(Day(Weekday::Sun));
        }
        Err(format!(
            "{s:?} is not a day of the week; write \"monday\" … \"sunday\" (or 周一 … 周日)"
        ))
    }
}

impl MailSettings {
    /// Problems with the `[mail]` values: (key path below `mail`, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.from.parse::<Mailbox>().is_err() {
            out.push((
                "from",
                format!(
                    "{:?} is not an e-mail address (write \"名称 <address>\" or an address)",
                    self.from
                ),
            ));
        }
        if let Some(r) = &self.reply_to
            && r.parse::<Mailbox>().is_err()
        {
            out.push(("reply_to", format!("{r:?} is not an e-mail address")));
        }
        for (k, addr) in self.bureau.iter().enumerate() {
            if addr.parse::<Mailbox>().is_err() {
                out.push((
                    "bureau",
                    format!("address #{} {addr:?} is not an e-mail address", k + 1),
                ));
            }
        }
        if let Some(url) = &self.smtp_url
            && let Err(e) = SmtpUrl::parse(url).and_then(|u| u.check_plain(self.allow_plain))
        {
            out.push(("smtp_url", e));
        }
        for (key_weekday, key_every, weekday, every) in [
            (
                "reminders.weekday",
                "reminders.every_days",
                self.reminders.weekday,
                self.reminders.every_days,
            ),
            (
                "digest.weekday",
                "digest.every_days",
                self.digest.weekday,
                self.digest.every_days,
            ),
        ] {
            if weekday.is_some() && every.is_some() {
                out.push((
                    key_weekday,
                    "give either weekday or every_days, not both".into(),
                ));
            }
            if every == Some(0) {
                out.push((key_every, "must be 1 or more days".into()));
            }
        }
        if self.reminders.deadline_days > 28 {
            out.push((
                "reminders.deadline_days",
                format!(
                    "must be 0..=28 days, found {}",
                    self.reminders.deadline_days
                ),
            ));
        }
        if self.grace_days > 366 {
            out.push((
                "grace_days",
                format!("must be 0..=366 days, found {}", self.grace_days),
            ));
        }
        if !(1..=120).contains(&self.timeout_secs) {
            out.push((
                "timeout_secs",
                format!("must be 1..=120 seconds, found {}", self.timeout_secs),
            ));
        }
        let r = &self.retry;
        if r.max_attempts == 0 {
            out.push(("retry.max_attempts", "must be 1 or more".into()));
        }
        if r.backoff_seconds == 0 {
            out.push(("retry.backoff_seconds", "must be 1 or more seconds".into()));
        }
        if r.max_backoff_seconds < r.backoff_seconds {
            out.push((
                "retry.max_backoff_seconds",
                format!("must not be below backoff_seconds ({})", r.backoff_seconds),
            ));
        }
        out
    }

    /// The schedule of reminders and digests, for the core's decisions.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            grace_days: self.grace_days,
            skip_dates: self.skip_dates.clone(),
            quiet_hours: self.quiet_hours,
            reminders: Cycle {
                enabled: self.reminders.enabled,
                cadence: self.reminders.cadence(),
                time: self.reminders.time.0,
            },
            deadline_days: self.reminders.deadline_days,
            digest: Cycle {
                enabled: self.digest.enabled,
                cadence: self.digest.cadence(),
                time: self.digest.time.0,
            },
        }
    }

    /// The sender's mailbox (validated at load; a default when not).
    pub fn from_mailbox(&self) -> Mailbox {
        self.from
            .parse()
            .unwrap_or_else(|_| "tally <tally@localhost>".parse().expect("valid default"))
    }
}

/// Every contact and leader address of the units that is not an e-mail address, with the key
/// path in tally.toml.
pub fn contact_problems(plan: &Plan) -> Vec<Problem<'_>> {
    let mut out = Vec::new();
    for (i, u) in plan.units.iter().enumerate() {
        for (k, addr) in u.contacts.iter().enumerate() {
            if addr.parse::<lettre::Address>().is_err() {
                out.push((
                    vec![Seg::Key("units"), Seg::Index(i), Seg::Key("contacts")],
                    format!("contact #{} {addr:?} is not an e-mail address", k + 1),
                ));
            }
        }
        if let Some(addr) = &u.leader
            && addr.parse::<lettre::Address>().is_err()
        {
            out.push((
                vec![Seg::Key("units"), Seg::Index(i), Seg::Key("leader")],
                format!("{addr:?} is not an e-mail address"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::core::remind::QuietHours;
    use crate::mail::Transport;
    use crate::mail::fixtures::config;
    use crate::mail::url::redact;
    use chrono::NaiveDate;
    use std::path::Path;

    /// Replace `from` by `to` in the reference plan; the error must point at the line that
    /// holds `at`.
    fn invalid(from: &str, to: &str, at: &str) -> (String, usize, String) {
        let reference = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tally.toml"));
        assert!(reference.contains(from), "{from}");
        let src = reference.replacen(from, to, 1);
        match Config::parse(&src, Path::new("tally.toml"), Path::new("/base")) {
            Err(crate::config::ConfigError::Invalid {
                key, line, message, ..
            }) => {
                let expected = src.lines().position(|l| l.starts_with(at)).unwrap() + 1;
                assert_eq!(line, expected, "{key}: {message}");
                (key, line, message)
            }
            Err(e) => (String::new(), 0, e.to_string()),
            Ok(_) => panic!("{to:?} was accepted"),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = RetrySettings::default();
        assert_eq!(r.backoff(1), Duration::seconds(60));
        assert_eq!(r.backoff(2), Duration::seconds(120));
        assert_eq!(r.backoff(7), Duration::seconds(3600));
        assert_eq!(r.backoff(200), Duration::seconds(3600));
    }

    #[test]
    fn schedule_values_parse() {
        assert_eq!(Day::try_from("周五".to_string()).unwrap().0, Weekday::Fri);
        assert_eq!(Day::try_from("Monday".to_string()).unwrap().0, Weekday::Mon);
        assert!(Day::try_from("someday".to_string()).is_err());
        let q = QuietHours::try_from("20:00-08:00".to_string()).unwrap();
        assert!(q.contains(NaiveTime::from_hms_opt(23, 0, 0).unwrap()));
        assert!(q.contains(NaiveTime::from_hms_opt(7, 59, 0).unwrap()));
        assert!(!q.contains(NaiveTime::from_hms_opt(8, 0, 0).unwrap()));
        let s =
            crate::core::remind::DateSpan::try_from("2020-10-01..2020-10-08".to_string()).unwrap();
        assert!(s.contains(NaiveDate::from_ymd_opt(2020, 10, 8).unwrap()));
        assert!(
            crate::core::remind::DateSpan::try_from("2020-10-08..2020-10-01".to_string()).is_err()
        );
        assert!(ClockTime::try_from("25:00".to_string()).is_err());
    }

    #[test]
    fn mail_settings_are_checked_with_key_and_line() {
        let (key, _, _) = invalid(
            "bureau = [\"anquan@example.org\"]",
            "bureau = [\"anquan at example.org\"]",
            "bureau",
        );
        assert_eq!(key, "mail.bureau");
        let to = "smtp_url = \"smtps://tally:secret@mail.example.org\"\nfrom = \"";
        let (key, _, msg) = invalid("from = \"", to, "smtp_url");
        assert_eq!(key, "mail.smtp_url");
        assert!(msg.contains("TALLY_SMTP_PASSWORD"), "{msg}");
        assert!(
            !msg.contains("secret"),
            "the password is never echoed: {msg}"
        );
        let (key, _, msg) = invalid(
            "from = \"",
            "smtp_url = \"smtp://mail.example.org\"\nfrom = \"",
            "smtp_url",
        );
        assert_eq!(key, "mail.smtp_url");
        assert!(msg.contains("allow_plain"), "{msg}");
        let to = "every_days = 7\nweekday = \"monday\" # 催办";
        let (key, _, _) = invalid(
            "weekday = \"monday\"                   # 催办",
            to,
            "weekday",
        );
        assert_eq!(key, "mail.reminders.weekday");
        let from = "from = \"滨江区应急管理局安全培训 <tally@example.org>\"";
        let (key, _, _) = invalid(from, "from = \"tally at example\"", "from");
        assert_eq!(key, "mail.from");
        let (key, _, msg) = invalid("from = \"", "timeout_secs = 0\nfrom = \"", "timeout_secs");
        assert_eq!(key, "mail.timeout_secs");
        assert!(msg.contains("1..=120"), "{msg}");
        assert_eq!(MailSettings::default().timeout_secs, DEFAULT_TIMEOUT_SECS);
    }

    #[test]
    fn bad_schedule_values_name_the_key_and_line() {
        let reference = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tally.toml"));
        for (from, to, needle) in [
            ("time = \"09:00\"", "time = \"9点\"", "time"),
            (
                "weekday = \"monday\"                   # 催办",
                "weekday = \"someday\"",
                "weekday",
            ),
            (
                "grace_days = 31",
                "grace_days = 31\nquiet_hours = \"20:00\"",
                "quiet_hours",
            ),
            ("leader_after = 2", "leader_after = 2\ncolour = 1", "colour"),
        ] {
            assert!(reference.contains(from), "{from}");
            let err = Config::parse(
                &reference.replacen(from, to, 1),
                Path::new("tally.toml"),
                Path::new("/b"),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(needle) && err.contains("line"), "{err}");
        }
    }

    #[test]
    fn a_password_is_never_shown_whatever_the_form_of_the_url() {
        for url in [
            "tally:s3cret@mail.example.org:465",
            "smtps://tally:s3cret@mail.example.org:465",
            "smtps://tally:s3c@ret@mail.example.org",
            "smtp:tally:s3cret@mail.example.org",
            "tally:s3cret@mail.example.org/path",
        ] {
            let shown = redact(url);
            assert!(
                !shown.contains("s3cret") && !shown.contains("ret@"),
                "{url} -> {shown}"
            );
            let e = SmtpUrl::parse(url).unwrap_err();
            assert!(!e.contains("s3cret"), "{url}: {e}");
            let e = Transport::resolve(&config(), Some(url.into()), None).unwrap_err();
            assert!(!e.to_string().contains("s3cret"), "{url}: {e}");
        }
        assert_eq!(
            redact("tally:s3cret@mail.example.org:465"),
            "tally:***@mail.example.org:465"
        );
        assert_eq!(redact("smtp://mail.example.org"), "smtp://mail.example.org");
        assert_eq!(
            redact("smtps://tally@mail.example.org"),
            "smtps://tally@mail.example.org"
        );
        // In tally.toml too.
        let to = "smtp_url = \"tally:s3cret@mail.example.org:465\"\nfrom = \"";
        let (key, _, msg) = invalid("from = \"", to, "smtp_url");
        assert_eq!(key, "mail.smtp_url");
        assert!(!msg.contains("s3cret"), "{msg}");
    }
}
