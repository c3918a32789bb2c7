//! When is a dropped file complete? Which names are never returns? A pure state machine in the
//! manner of notify-debouncer-full: it is told what happened (`add_event`) and what a look at
//! the disk saw (`observe`), and says what to look at next and which files are ready. It never
//! touches the disk or a clock: `now` (monotonic) and `wall` (the file system's time scale) are
//! parameters, so the tests drive it with a fake clock and tables of events.

use crate::core::form::{ACCEPTED_DIR, REJECTED_DIR, is_feedback_name};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Why a name is never taken in (and never logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignore {
    /// An Office or LibreOffice lock ("owner") file: `~$*`, `.~lock.*#`.
    OfficeLock,
    /// A temporary or partial download: `*.tmp`, `*.part`, `*.crdownload`, and Excel's
    /// extensionless 8-hex-digit save file (`1A2B3C4D`).
    Temporary,
    /// A hidden file or folder (`.name`) or a system file (Thumbs.db, desktop.ini, recycle bins).
    Hidden,
    /// Inside 已接收/ or 退回/: already handled.
    Handled,
    /// Our own feedback workbook (`*.错误说明.xlsx`).
    Feedback,
    /// Another file tally publishes in a unit's folder (the unit's progress workbook), or a
    /// folder of them (the blank forms): never a return.
    Published,
    /// Not under the watch root at all.
    Elsewhere,
}

/// Why a file in the watch root is not counted (logged once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outside {
    /// Directly in the watch root, not in any unit's folder.
    InRoot,
    /// In a folder of the watch root that belongs to no unit.
    ForeignFolder(String),
    /// In a sub-folder of a unit's folder (returns must sit directly in it).
    SubFolder(String),
}

impl Outside {
    /// What to tell the operator, in one phrase.
    pub fn explain(&self) -> String {
        match self {
            Outside::InRoot => "it lies in the watch root, not in a unit's folder".into(),
            Outside::ForeignFolder(f) => format!("folder {f:?} is no unit's folder"),
            Outside::SubFolder(f) => format!(
                "sub-folders of unit folder {f:?} are not looked into; returns must sit directly in it"
            ),
        }
    }
}

/// What a path in the watch root is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// A candidate return directly in the folder of a unit (the folder name is given).
    Return { folder: String },
    /// The watch root itself or a unit's folder: check that the folders are still there.
    Folder,
    /// Never a return; not worth a log line.
    Ignored(Ignore),
    /// In the watch root but outside any unit's folder: not counted, logged once.
    Outside(Outside),
}

/// The drop zone: the watch root and the folder names of the units.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    pub unit_folders: Vec<String>,
    /// Names of the files tally itself writes directly in each unit's folder (本单位进度.xlsx).
    pub published_files: Vec<String>,
    /// Names of the sub-folders tally itself fills in each unit's folder (报表模板).
    pub published_folders: Vec<String>,
}

impl Layout {
    /// What `path` is.
    pub fn classify(&self, path: &Path) -> Class {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return Class::Ignored(Ignore::Elsewhere);
        };
        let parts: Vec<String> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        if parts.is_empty() {
            return Class::Folder;
        }
        // Hidden, lock and temp names anywhere on the way are ignored.
        if let Some(why) = parts.iter().find_map(|p| ignored_name(p)) {
            return Class::Ignored(why);
        }
        let is_unit = self.unit_folders.iter().any(|f| *f == parts[0]);
        match (is_unit, parts.len()) {
            (true, 1) => Class::Folder,
            (true, _) if parts[1] == ACCEPTED_DIR || parts[1] == REJECTED_DIR => {
                Class::Ignored(Ignore::Handled)
            }
            (true, 2) if is_feedback_name(&parts[1]) => Class::Ignored(Ignore::Feedback),
            (true, 2) if self.published_files.contains(&parts[1]) => {
                Class::Ignored(Ignore::Published)
            }
            (true, _) if self.published_folders.contains(&parts[1]) => {
                Class::Ignored(Ignore::Published)
            }
            (true, 2) => Class::Return {
                folder: parts[0].clone(),
            },
            (true, _) => Class::Outside(Outside::SubFolder(parts[0].clone())),
            (false, 1) => Class::Outside(Outside::InRoot),
            (false, _) => Class::Outside(Outside::ForeignFolder(parts[0].clone())),
        }
    }
}

/// Whether a single file or folder name is never a return, and why.
pub fn ignored_name(name: &str) -> Option<Ignore> {
    let lower = name.to_lowercase();
    if name.starts_with("~$") || (name.starts_with(".~lock.") && name.ends_with('#')) {
        return Some(Ignore::OfficeLock);
    }
    if name.starts_with('.') {
        return Some(Ignore::Hidden);
    }
    if [
        "thumbs.db",
        "desktop.ini",
        "$recycle.bin",
        "#recycle",
        "system volume information",
    ]
    .contains(&lower.as_str())
    {
        return Some(Ignore::Hidden);
    }
    if [".tmp", ".part", ".crdownload"]
        .iter()
        .any(|ext| lower.ends_with(ext))
        || (name.len() == 8 && name.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Some(Ignore::Temporary);
    }
    None
}

/// The names of the lock ("owner") files that say `name` is open in an office program:
///
/// - Excel and WPS write `~$` + the whole name (`~$12月.xlsx`);
/// - LibreOffice writes `.~lock.` + the name + `#`;
/// - Word-style programs shorten long names: when the name without its extension (the stem)
///   has 8 or more characters, `~$` replaces its first two characters (`Document1.docx` →
///   `~$cument1.docx`); with exactly 7, its first character; shorter stems are not shortened.
///
/// Lengths are counted in characters. Exactly one shortened form is derived, from the length
/// of this name's own stem, so a lock of another, shorter name never holds this one: the lock
/// `~$2月.xlsx` (2月.xlsx open in Excel) does not hold `12月.xlsx`, whose stem is too short
/// to be shortened. What remains ambiguous is genuinely so (Word's lock for `abcdefgh.xlsx`
/// is Excel's lock for `cdefgh.xlsx`); such a file is conservatively treated as held, and is
/// taken anyway after `held_max`.
pub fn lock_names(name: &str) -> Vec<String> {
    let mut out = vec![format!("~${name}"), format!(".~lock.{name}#")];
    let stem = match name.rfind('.') {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    };
    let skip = match stem.chars().count() {
        0..=6 => 0,
        7 => 1,
        _ => 2,
    };
    if skip > 0
        && let Some((i, _)) = name.char_indices().nth(skip)
    {
        out.push(format!("~${}", &name[i..]));
    }
    out
}

/// Size and modification time: what tells two looks at a file apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub mtime: SystemTime,
}

/// What one look at a path found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// The file is there and can be opened for reading.
    Open(Stat),
    /// The file is there but cannot be opened (a sharing violation, permissions): look again.
    Unopenable(Stat),
    /// The file is there and an office program's lock file beside it says it is open.
    Held(Stat),
    /// Nothing there (any more), or not a regular file.
    Gone,
}

/// Timing of the settle rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Size and mtime must be unchanged across two looks this far apart.
    pub settle: Duration,
    /// The file must be at least this old (by its mtime, or by how long we have seen it
    /// unchanged when its mtime lies in the future of our clock).
    pub min_age: Duration,
    /// A file held open by an office program is taken anyway once unchanged this long (lock
    /// files outlive crashed programs, especially on shares).
    pub held_max: Duration,
}

impl Timing {
    pub fn new(settle: Duration, min_age: Duration) -> Timing {
        Timing {
            settle,
            min_age,
            held_max: Duration::from_secs(600),
        }
    }
}

/// A file that has settled: take it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub path: PathBuf,
    /// The unit folder it was dropped in.
    pub folder: String,
    pub stat: Stat,
    /// When the first event or look for it arrived.
    pub since: Instant,
}

#[derive(Debug, Clone)]
struct Entry {
    folder: String,
    /// First event or look (arrival order and latency).
    since: Instant,
    /// The stat last seen and when it was first seen unchanged.
    seen: Option<(Stat, Instant)>,
    /// When to look next; `None` while a look is not needed (never: every entry is looked at).
    next_look: Instant,
    /// The last look found it held open or unopenable.
    blocked: bool,
    /// How many times its size or mtime changed between looks.
    changes: u32,
}

/// The settle state machine: one entry per path under consideration.
#[derive(Debug, Clone)]
pub struct Settler {
    timing: Timing,
    /// `--once`: a file that changes between looks is left for the next run instead of
    /// being waited for.
    give_up_on_change: bool,
    files: BTreeMap<PathBuf, Entry>,
    ready: Vec<Ready>,
    /// Paths given up on (once mode), for the report.
    given_up: Vec<PathBuf>,
}

impl Settler {
    pub fn new(timing: Timing) -> Settler {
        Settler {
            timing,
            give_up_on_change: false,
            files: BTreeMap::new(),
            ready: Vec::new(),
            given_up: Vec::new(),
        }
    }

    /// A settler for one pass (`--once`): files that are still changing are not waited for.
    pub fn one_pass(timing: Timing) -> Settler {
        Settler {
            give_up_on_change: true,
            ..Settler::new(timing)
        }
    }

    /// Something happened at `path` (a candidate in unit folder `folder`): look at it now.
    /// Events that arrive before the look coalesce into it.
    pub fn add_event(&mut self, path: PathBuf, folder: String, now: Instant) {
        if self.ready.iter().any(|r| r.path == path) {
            // Settled already; the daemon takes it in this same step.
            return;
        }
        self.files
            .entry(path)
            .and_modify(|e| e.next_look = e.next_look.min(now))
            .or_insert(Entry {
                folder,
                since: now,
                seen: None,
                next_look: now,
                blocked: false,
                changes: 0,
            });
    }

    /// Whether a path is under consideration.
    pub fn contains(&self, path: &Path) -> bool {
        self.files.contains_key(path)
    }

    /// Forget a path (it is being taken, or was taken).
    pub fn forget(&mut self, path: &Path) {
        self.files.remove(path);
        self.ready.retain(|r| r.path != path);
    }

    /// Paths to look at now, in path order.
    pub fn due(&self, now: Instant) -> Vec<PathBuf> {
        self.files
            .iter()
            .filter(|(_, e)| e.next_look <= now)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// When the next look is due, if any. A file that has settled and waits in the ready
    /// list (it settled while another was being taken) is due at once: its arrival time, which
    /// lies in the past, is given.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.files
            .values()
            .map(|e| e.next_look)
            .chain(self.ready.iter().map(|r| r.since))
            .min()
    }

    /// What a look at `path` found at `now` (monotonic) / `wall` (the file system's clock).
    pub fn observe(&mut self, path: &Path, look: Look, now: Instant, wall: SystemTime) {
        let Some(entry) = self.files.get_mut(path) else {
            return;
        };
        let (stat, blocked) = match look {
            Look::Gone => {
                self.files.remove(path);
                return;
            }
            Look::Open(s) => (s, None),
            Look::Unopenable(s) => (s, Some(false)),
            Look::Held(s) => (s, Some(true)),
        };
        let t = self.timing;
        let stable_since = match entry.seen {
            Some((prev, since)) if prev == stat => since,
            Some(_) => {
                entry.changes += 1;
                if self.give_up_on_change {
                    self.files.remove(path);
                    self.given_up.push(path.to_path_buf());
                    return;
                }
                entry.seen = Some((stat, now));
                now
            }
            None => {
                entry.seen = Some((stat, now));
                now
            }
        };
        entry.blocked = blocked.is_some();
        if self.give_up_on_change && entry.blocked {
            // One pass does not wait for a file someone has open.
            self.files.remove(path);
            self.given_up.push(path.to_path_buf());
            return;
        }
        let stable_for = now.saturating_duration_since(stable_since);
        // Age by the file system's clock; when the mtime lies ahead of ours (a share's clock
        // runs fast), by how long we have seen it unchanged.
        let fs_age = wall.duration_since(stat.mtime).unwrap_or(Duration::ZERO);
        let age = fs_age.max(stable_for);
        let mut wait = Duration::ZERO;
        if stable_for < t.settle {
            // A first look, or a change: a second look `settle` later decides.
            wait = wait.max(t.settle.saturating_sub(stable_for));
        }
        if age < t.min_age {
            wait = wait.max(t.min_age - age);
        }
        match blocked {
            Some(true) if stable_for < t.held_max => {
                // Open in an office program: look again each settle period, take it anyway
                // after held_max unchanged.
                wait = wait.max(t.settle.min(t.held_max - stable_for));
            }
            Some(false) => wait = wait.max(t.settle),
            _ => {}
        }
        if wait.is_zero() {
            let entry = self.files.remove(path).expect("present");
            self.ready.push(Ready {
                path: path.to_path_buf(),
                folder: entry.folder,
                stat,
                since: entry.since,
            });
        } else {
            entry.next_look = now + wait;
        }
    }

    /// Files that have settled, in the order they arrived; they leave the machine.
    pub fn take_ready(&mut self) -> Vec<Ready> {
        let mut ready = std::mem::take(&mut self.ready);
        ready.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.path.cmp(&b.path)));
        ready
    }

    /// Paths given up on because they changed between looks or were held open (one-pass
    /// mode).
    pub fn take_given_up(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.given_up)
    }

    /// Files under consideration: still settling, or settled and not yet taken
    /// ([`Settler::take_ready`]).
    pub fn pending(&self) -> usize {
        self.files.len() + self.ready.len()
    }

    /// Whether some file is ready or on its way to being ready soon: it is not blocked and
    /// changed recently. A burst's master rebuild waits for such files; a file held open in
    /// Excel for an hour does not hold the master back.
    pub fn settling(&self, now: Instant) -> bool {
        if !self.ready.is_empty() {
            return true;
        }
        let horizon = self.timing.settle.max(self.timing.min_age) + self.timing.settle;
        self.files.values().any(|e| {
            !e.blocked
                && match e.seen {
                    None => true,
                    Some((_, since)) => now.saturating_duration_since(since) <= horizon,
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            root: PathBuf::from("/w"),
            unit_folders: vec!["西兴街道".into(), "长河街道".into()],
            published_files: vec!["本单位进度.xlsx".into()],
            published_folders: vec!["报表模板".into()],
        }
    }

    #[test]
    fn paths_are_classified() {
        let l = layout();
        let ret = |f: &str| Class::Return { folder: f.into() };
        let table: &[(&str, Class)] = &[
            ("/w", Class::Folder),
            ("/w/西兴街道", Class::Folder),
            ("/w/西兴街道/2020-05.xlsx", ret("西兴街道")),
            ("/w/长河街道/五月 报表.XLS", ret("长河街道")),
            ("/w/西兴街道/notes.pdf", ret("西兴街道")),
            (
                "/w/西兴街道/本单位进度.xlsx",
                Class::Ignored(Ignore::Published),
            ),
            (
                "/w/西兴街道/报表模板/西兴街道_2020年05月_培训台账.xlsx",
                Class::Ignored(Ignore::Published),
            ),
            ("/w/西兴街道/报表模板", Class::Ignored(Ignore::Published)),
            ("/w/长河街道/本单位进度 (2).xlsx", ret("长河街道")),
            (
                "/w/西兴街道/~$2020-05.xlsx",
                Class::Ignored(Ignore::OfficeLock),
            ),
            (
                "/w/西兴街道/.~lock.2020-05.xlsx#",
                Class::Ignored(Ignore::OfficeLock),
            ),
            (
                "/w/西兴街道/2020-05.xlsx.tmp",
                Class::Ignored(Ignore::Temporary),
            ),
            ("/w/西兴街道/2020-05.TMP", Class::Ignored(Ignore::Temporary)),
            ("/w/西兴街道/r.xlsx.part", Class::Ignored(Ignore::Temporary)),
            (
                "/w/西兴街道/r.xlsx.crdownload",
                Class::Ignored(Ignore::Temporary),
            ),
            ("/w/西兴街道/1A2B3C4D", Class::Ignored(Ignore::Temporary)),
            ("/w/西兴街道/.hidden.xlsx", Class::Ignored(Ignore::Hidden)),
            ("/w/西兴街道/Thumbs.db", Class::Ignored(Ignore::Hidden)),
            (
                "/w/.snapshot/西兴街道/a.xlsx",
                Class::Ignored(Ignore::Hidden),
            ),
            (
                "/w/西兴街道/已接收/2020-05.xlsx",
                Class::Ignored(Ignore::Handled),
            ),
            (
                "/w/西兴街道/退回/2020-05.xlsx",
                Class::Ignored(Ignore::Handled),
            ),
            ("/w/西兴街道/退回", Class::Ignored(Ignore::Handled)),
            (
                "/w/西兴街道/2020-05.错误说明.xlsx",
                Class::Ignored(Ignore::Feedback),
            ),
            ("/elsewhere/a.xlsx", Class::Ignored(Ignore::Elsewhere)),
            ("/w/a.xlsx", Class::Outside(Outside::InRoot)),
            (
                "/w/西湖街道/a.xlsx",
                Class::Outside(Outside::ForeignFolder("西湖街道".into())),
            ),
            ("/w/西湖街道", Class::Outside(Outside::InRoot)),
            (
                "/w/西兴街道/五月/a.xlsx",
                Class::Outside(Outside::SubFolder("西兴街道".into())),
            ),
        ];
        for (path, want) in table {
            assert_eq!(&l.classify(Path::new(path)), want, "{path}");
        }
    }

    #[test]
    fn lock_names_cover_excel_word_and_libreoffice() {
        let names = |n: &str| lock_names(n);
        // A 7-character stem: Word drops one character.
        assert_eq!(
            names("2020-05.xlsx"),
            ["~$2020-05.xlsx", ".~lock.2020-05.xlsx#", "~$020-05.xlsx"]
        );
        // 8 or more: Word drops two.
        assert_eq!(
            names("Document1.docx"),
            [
                "~$Document1.docx",
                ".~lock.Document1.docx#",
                "~$cument1.docx"
            ]
        );
        // Up to 6: never shortened.
        assert_eq!(names("五月.xlsx"), ["~$五月.xlsx", ".~lock.五月.xlsx#"]);
        assert_eq!(names("README"), ["~$README", ".~lock.README#"]);
        // Multi-byte names are counted and cut in characters.
        assert!(names("西兴街道五月报表.xlsx").contains(&"~$街道五月报表.xlsx".to_string()));
        for n in names("2020-05.xlsx")
            .into_iter()
            .chain(names("西兴街道五月报表.xlsx"))
        {
            assert_eq!(ignored_name(&n), Some(Ignore::OfficeLock), "{n}");
        }
    }

    #[test]
    fn the_lock_of_one_file_does_not_hold_another() {
        // 2月.xlsx open in Excel (~$2月.xlsx) must not hold 12月.xlsx, nor 1月 hold 11月.
        for (open, other) in [
            ("2月.xlsx", "12月.xlsx"),
            ("1月.xlsx", "11月.xlsx"),
            ("20-05.xlsx", "2020-05.xlsx"),
            ("05.xlsx", "2020-05.xlsx"),
        ] {
            let lock = format!("~${open}");
            assert!(lock_names(open).contains(&lock));
            assert!(
                !lock_names(other).contains(&lock),
                "{lock} holds {other}: {:?}",
                lock_names(other)
            );
        }
        // Genuinely ambiguous, so held (conservatively): Excel's lock for 020-05.xlsx is
        // Word's for 2020-05.xlsx.
        assert!(lock_names("2020-05.xlsx").contains(&"~$020-05.xlsx".to_string()));
    }

    // ---- the state machine, driven by a fake clock and a fake disk -------------------------

    /// What is on the fake disk: path → (size, mtime in ms since the start, state).
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Disk {
        Open,
        Unopenable,
        Held,
    }

    /// One step of a scenario, at a time in ms since the start.
    #[derive(Clone, Debug)]
    enum Step {
        /// Write `size` bytes to the file (mtime = now) and send an event.
        Write(&'static str, u64),
        /// Write without an event (a share that sends none).
        WriteQuiet(&'static str, u64),
        /// Rename a file (the event names both paths).
        Rename(&'static str, &'static str),
        /// Remove a file (with an event).
        Remove(&'static str),
        /// Set a file's open state (no event: a lock file beside it appears or goes).
        State(&'static str, Disk),
        /// A bare event (an access, a rescan) for a path.
        Touch(&'static str),
    }

    struct Sim {
        start: Instant,
        wall0: SystemTime,
        disk: BTreeMap<String, (u64, u64, Disk)>,
        settler: Settler,
        layout: Layout,
        taken: Vec<(u64, String)>,
    }

    impl Sim {
        fn new(settler: Settler) -> Sim {
            Sim {
                start: Instant::now(),
                wall0: SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000),
                disk: BTreeMap::new(),
                settler,
                layout: Layout {
                    root: PathBuf::from("/w"),
                    unit_folders: vec!["u".into()],
                    published_files: Vec::new(),
                    published_folders: Vec::new(),
                },
                taken: Vec::new(),
            }
        }

        fn at(&self, ms: u64) -> (Instant, SystemTime) {
            let d = Duration::from_millis(ms);
            (self.start + d, self.wall0 + d)
        }

        fn event(&mut self, name: &str, ms: u64) {
            let path = PathBuf::from("/w/u").join(name);
            if let Class::Return { folder } = self.layout.classify(&path) {
                self.settler.add_event(path, folder, self.at(ms).0);
            }
        }

        fn apply(&mut self, ms: u64, step: &Step) {
            match step {
                Step::Write(n, size) | Step::WriteQuiet(n, size) => {
                    let state = self.disk.get(*n).map_or(Disk::Open, |d| d.2);
                    self.disk.insert(n.to_string(), (*size, ms, state));
                    if matches!(step, Step::Write(..)) {
                        self.event(n, ms);
                    }
                }
                Step::Rename(a, b) => {
                    if let Some(d) = self.disk.remove(*a) {
                        self.disk.insert(b.to_string(), d);
                    }
                    self.event(a, ms);
                    self.event(b, ms);
                }
                Step::Remove(n) => {
                    self.disk.remove(*n);
                    self.event(n, ms);
                }
                Step::State(n, s) => {
                    if let Some(d) = self.disk.get_mut(*n) {
                        d.2 = *s;
                    }
                }
                Step::Touch(n) => self.event(n, ms),
            }
        }

        /// Run until `end` ms, stepping 10 ms at a time, doing due looks like the daemon.
        fn run(&mut self, steps: &[(u64, Step)], end: u64) {
            let mut steps = steps.iter().peekable();
            let mut ms = 0;
            while ms <= end {
                while let Some((t, s)) = steps.peek() {
                    if *t > ms {
                        break;
                    }
                    self.apply(ms, s);
                    steps.next();
                }
                let (now, wall) = self.at(ms);
                for path in self.settler.due(now) {
                    let name = path.file_name().unwrap().to_string_lossy().to_string();
                    let look = match self.disk.get(&name) {
                        None => Look::Gone,
                        Some(&(size, mtime, state)) => {
                            let stat = Stat {
                                size,
                                mtime: self.wall0 + Duration::from_millis(mtime),
                            };
                            match state {
                                Disk::Open => Look::Open(stat),
                                Disk::Unopenable => Look::Unopenable(stat),
                                Disk::Held => Look::Held(stat),
                            }
                        }
                    };
                    self.settler.observe(&path, look, now, wall);
                }
                for r in self.settler.take_ready() {
                    let name = r.path.file_name().unwrap().to_string_lossy().to_string();
                    // Taking a file moves it away, as intake does.
                    self.disk.remove(&name);
                    self.taken.push((ms, name));
                }
                ms += 10;
            }
        }
    }

    fn timing(settle_ms: u64, min_age_ms: u64) -> Timing {
        Timing {
            settle: Duration::from_millis(settle_ms),
            min_age: Duration::from_millis(min_age_ms),
            held_max: Duration::from_millis(5_000),
        }
    }

    fn scenario(t: Timing, steps: &[(u64, Step)], end: u64) -> Vec<(u64, String)> {
        let mut sim = Sim::new(Settler::new(t));
        sim.run(steps, end);
        sim.taken
    }

    use Step::*;

    #[test]
    fn a_file_written_at_once_is_taken_after_one_settle_period() {
        let taken = scenario(timing(300, 0), &[(0, Write("a.xlsx", 100))], 2_000);
        assert_eq!(taken, [(300, "a.xlsx".to_string())]);
    }

    #[test]
    fn a_file_written_slowly_is_taken_once_when_complete() {
        // 10 chunks, 200 ms apart: shorter gaps than settle, so never taken half-written.
        let steps: Vec<(u64, Step)> = (0..10)
            .map(|i| (i * 200, Write("slow.xlsx", (i + 1) * 1000)))
            .collect();
        let taken = scenario(timing(300, 0), &steps, 5_000);
        assert_eq!(taken, [(2_100, "slow.xlsx".to_string())]);
    }

    #[test]
    fn a_writer_that_sends_no_events_is_still_caught_by_the_second_look() {
        // The first event comes with the first chunk; later chunks are silent (SMB), but the
        // look after settle sees the size change and starts over.
        let steps = [
            (0, Write("a.xlsx", 10)),
            (100, WriteQuiet("a.xlsx", 20)),
            (350, WriteQuiet("a.xlsx", 30)),
        ];
        let taken = scenario(timing(300, 0), &steps, 3_000);
        assert_eq!(taken, [(900, "a.xlsx".to_string())]);
    }

    #[test]
    fn minimum_age_is_waited_for() {
        let taken = scenario(timing(300, 1_000), &[(0, Write("a.xlsx", 100))], 3_000);
        assert_eq!(taken, [(1_000, "a.xlsx".to_string())]);
    }

    #[test]
    fn an_old_file_found_at_start_still_gets_two_looks() {
        let mut sim = Sim::new(Settler::new(timing(300, 1_000)));
        // Present before the daemon started: mtime long ago, discovered by the start scan.
        sim.disk.insert("old.xlsx".into(), (100, 0, Disk::Open));
        sim.run(&[(5_000, Touch("old.xlsx"))], 7_000);
        assert_eq!(sim.taken, [(5_300, "old.xlsx".to_string())]);
    }

    #[test]
    fn excel_save_via_temp_file_and_rename_is_taken_once_under_its_real_name() {
        // Excel: owner file, write to an extensionless temp, rename the old file away,
        // rename the temp into place, delete the old one, later drop the owner file.
        let steps = [
            (0, Write("~$2020-05.xlsx", 165)),
            (10, Write("8A3B2C10", 0)),
            (20, Write("8A3B2C10", 40_000)),
            (60, Write("8A3B2C10", 81_920)),
            (100, Rename("8A3B2C10", "2020-05.xlsx")),
            (110, Remove("~$2020-05.xlsx")),
        ];
        let taken = scenario(timing(300, 0), &steps, 2_000);
        assert_eq!(taken, [(400, "2020-05.xlsx".to_string())]);
    }

    #[test]
    fn excel_resave_over_an_existing_name_restarts_the_settle() {
        let steps = [
            (0, Write("2020-05.xlsx", 50_000)),
            // Saved again 200 ms later through a temp file and two renames.
            (200, Write("9F00AA11", 60_000)),
            (210, Rename("2020-05.xlsx", "C5D6E7F8.tmp")),
            (220, Rename("9F00AA11", "2020-05.xlsx")),
            (230, Remove("C5D6E7F8.tmp")),
        ];
        let taken = scenario(timing(300, 0), &steps, 2_000);
        assert_eq!(taken, [(520, "2020-05.xlsx".to_string())]);
    }

    #[test]
    fn a_file_removed_before_it_settles_is_forgotten() {
        let steps = [(0, Write("a.xlsx", 10)), (100, Remove("a.xlsx"))];
        let mut sim = Sim::new(Settler::new(timing(300, 0)));
        sim.run(&steps, 1_000);
        assert!(sim.taken.is_empty());
        assert_eq!(sim.settler.pending(), 0);
    }

    #[test]
    fn a_browser_download_is_taken_after_its_rename() {
        let steps = [
            (0, Write("r.xlsx.crdownload", 10)),
            (100, Write("r.xlsx.crdownload", 5_000)),
            (150, Rename("r.xlsx.crdownload", "r.xlsx")),
        ];
        assert_eq!(
            scenario(timing(300, 0), &steps, 2_000),
            [(450, "r.xlsx".to_string())]
        );
    }

    #[test]
    fn an_unopenable_file_waits_until_it_can_be_opened() {
        let steps = [
            (0, Write("a.xlsx", 10)),
            (0, State("a.xlsx", Disk::Unopenable)),
            (1_000, State("a.xlsx", Disk::Open)),
        ];
        let taken = scenario(timing(300, 0), &steps, 3_000);
        assert_eq!(taken, [(1_200, "a.xlsx".to_string())]);
    }

    #[test]
    fn a_file_held_open_waits_for_its_lock_file_or_held_max() {
        let steps = [
            (0, Write("a.xlsx", 10)),
            (0, State("a.xlsx", Disk::Held)),
            (1_000, State("a.xlsx", Disk::Open)),
            (0, Write("b.xlsx", 10)),
            (0, State("b.xlsx", Disk::Held)),
        ];
        let mut steps = steps.to_vec();
        steps.sort_by_key(|s| s.0);
        let taken = scenario(timing(300, 0), &steps, 8_000);
        assert_eq!(
            taken,
            [(1_200, "a.xlsx".to_string()), (5_000, "b.xlsx".to_string())]
        );
    }

    #[test]
    fn a_burst_settles_together_in_arrival_order() {
        let mut steps: Vec<(u64, Step)> = Vec::new();
        let names = ["c.xlsx", "a.xlsx", "b.xlsx"];
        for (i, n) in names.into_iter().enumerate() {
            steps.push((i as u64 * 10, Write(n, 100)));
        }
        let taken = scenario(timing(300, 0), &steps, 2_000);
        let order: Vec<&str> = taken.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(order, names);
    }

    #[test]
    fn settling_is_true_while_a_file_is_on_its_way_and_false_for_blocked_ones() {
        let mut s = Settler::new(timing(300, 0));
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let stat = Stat {
            size: 1,
            mtime: wall,
        };
        s.add_event("/w/u/a.xlsx".into(), "u".into(), t0);
        assert!(s.settling(t0));
        s.observe(Path::new("/w/u/a.xlsx"), Look::Held(stat), t0, wall);
        assert!(!s.settling(t0), "a held file does not hold a burst open");
        s.add_event("/w/u/b.xlsx".into(), "u".into(), t0);
        s.observe(Path::new("/w/u/b.xlsx"), Look::Open(stat), t0, wall);
        assert!(s.settling(t0 + Duration::from_millis(100)));
        assert_eq!(s.next_wakeup(), Some(t0 + Duration::from_millis(300)));
    }

    #[test]
    fn a_file_that_settled_but_was_not_taken_yet_still_counts() {
        // b settles while a is being taken (the daemon is not calling take_ready): it must
        // keep a one-pass run going, hold the burst open, and wake the loop at once.
        let t = timing(300, 0);
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let stat = Stat {
            size: 1,
            mtime: wall,
        };
        for mut s in [Settler::new(t), Settler::one_pass(t)] {
            let (a, b) = (Path::new("/w/u/a.xlsx"), Path::new("/w/u/b.xlsx"));
            s.add_event(a.into(), "u".into(), t0);
            s.observe(a, Look::Open(stat), t0, wall);
            let t1 = t0 + Duration::from_millis(20);
            s.add_event(b.into(), "u".into(), t1);
            s.observe(b, Look::Open(stat), t1, wall);
            let t2 = t0 + Duration::from_millis(300);
            s.observe(a, Look::Open(stat), t2, wall);
            let batch = s.take_ready();
            assert_eq!(batch.len(), 1);
            assert_eq!(batch[0].path, a);
            // While a is taken, b settles.
            let t3 = t1 + Duration::from_millis(300);
            s.observe(b, Look::Open(stat), t3, wall);
            assert!(s.due(t3).is_empty());
            assert_eq!(s.pending(), 1, "a ready file is pending");
            assert!(s.settling(t3 + Duration::from_secs(60)), "and settling");
            assert!(
                s.next_wakeup().is_some_and(|w| w <= t3),
                "and due now: {:?}",
                s.next_wakeup()
            );
            let batch = s.take_ready();
            assert_eq!(batch.len(), 1);
            assert_eq!(batch[0].path, b);
            assert_eq!(s.pending(), 0);
            assert!(!s.settling(t3));
            assert_eq!(s.next_wakeup(), None);
        }
    }

    #[test]
    fn one_pass_mode_leaves_a_changing_file_for_the_next_run() {
        let mut sim = Sim::new(Settler::one_pass(timing(300, 0)));
        let steps = [
            (0, Write("done.xlsx", 10)),
            (0, Write("busy.xlsx", 10)),
            (100, WriteQuiet("busy.xlsx", 20)),
        ];
        sim.run(&steps, 2_000);
        assert_eq!(sim.taken, [(300, "done.xlsx".to_string())]);
        assert_eq!(
            sim.settler.take_given_up(),
            [PathBuf::from("/w/u/busy.xlsx")]
        );
        assert_eq!(sim.settler.pending(), 0);
    }

    #[test]
    fn an_mtime_in_the_future_does_not_block_forever() {
        let mut s = Settler::new(timing(300, 1_000));
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let stat = Stat {
            size: 1,
            mtime: wall + Duration::from_secs(3_600),
        };
        let p = Path::new("/w/u/a.xlsx");
        s.add_event(p.into(), "u".into(), t0);
        s.observe(p, Look::Open(stat), t0, wall);
        let t1 = t0 + Duration::from_millis(1_000);
        s.observe(p, Look::Open(stat), t1, wall + Duration::from_millis(1_000));
        assert_eq!(s.take_ready().len(), 1);
    }
}
