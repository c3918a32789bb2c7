//! `tally.toml`: the plan, units, categories, targets, paths and limits, loaded and validated
//! once (serde, `deny_unknown_fields`); every error names the key and line. No other module
//! reads the file; paths are resolved against the config file's folder here.

use crate::fold::fold;
use chrono_tz::Tz;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read the configuration: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax or a type error; toml's message carries line, column and key.
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    /// The file parsed but a value is not acceptable.
    #[error("{path}:{line}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub plan: Plan,
    pub categories: Vec<Category>,
    pub units: Vec<Unit>,
    /// targets[unit][category] = people to train in the plan year.
    pub targets: BTreeMap<String, BTreeMap<String, u32>>,
    #[serde(default)]
    pub paths: Paths,
    #[serde(default)]
    pub limits: Limits,
    /// The master workbook: how many earlier versions to keep.
    #[serde(default)]
    pub master: MasterConfig,
    /// The daemon: how it watches and when a dropped file counts as complete.
    #[serde(default)]
    pub watch: crate::watch::WatchConfig,
    /// Mail: transport, addresses, the reminder and digest schedule, retries.
    #[serde(default)]
    pub mail: crate::mail::MailConfig,
    /// Folder of the config file; every relative path is resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The plan's time zone, parsed from `plan.time_zone`.
    #[serde(skip, default = "default_tz")]
    pub tz: Tz,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub title: String,
    pub year: i32,
    #[serde(default)]
    pub period: Period,
    /// A month's return is due by the end of this day of the next month.
    #[serde(default = "default_deadline_day")]
    pub deadline_day: u32,
    #[serde(default)]
    pub schedule: ScheduleKind,
    /// For `schedule = "milestones"`: "YYYY-MM" → fraction of the target due by that month's end.
    #[serde(default)]
    pub milestones: BTreeMap<String, f64>,
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Mask 身份证号 in the master, mail and logs (330108********123X).
    #[serde(default = "default_true")]
    pub mask_ids: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Period {
    #[default]
    Month,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// Expected progress grows evenly over the year.
    #[default]
    Linear,
    /// Expected progress follows `plan.milestones`, interpolated within each month.
    Milestones,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub counting: Counting,
    /// Only 考核结果 = 合格 counts.
    #[serde(default)]
    pub require_pass: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Counting {
    /// Distinct 身份证号 in the plan year.
    #[default]
    Persons,
    /// Every training row counts.
    PersonTimes,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Drop folder under the watch root; defaults to the name.
    #[serde(default)]
    pub folder: Option<String>,
    #[serde(default)]
    pub contacts: Vec<String>,
    #[serde(default)]
    pub leader: Option<String>,
}

impl Unit {
    pub fn folder(&self) -> &str {
        self.folder.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    pub watch_root: PathBuf,
    pub archive: PathBuf,
    pub state: PathBuf,
    pub master: PathBuf,
    pub outbox: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            watch_root: "watch-dirs".into(),
            archive: "archive".into(),
            state: "state/tally.db".into(),
            master: "output/master.xlsx".into(),
            outbox: "outbox".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MasterConfig {
    /// Earlier versions of the master kept under `<archive>/master/` (the oldest go first).
    pub versions_kept: usize,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig { versions_kept: 10 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest return file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Most roster rows in one return.
    pub max_rows: usize,
    /// Address-space cap of the reader child process, in MiB.
    pub reader_memory_mb: u64,
    /// Wall-clock limit of the reader child process, in seconds.
    pub reader_seconds: u64,
    /// Most entries in a zip container (.xlsx, .xlsm, .ods).
    pub zip_max_entries: usize,
    /// Largest total inflated size of a zip container, in bytes.
    pub zip_max_inflated_bytes: u64,
    /// Largest inflate ratio of one entry (checked for entries over 1 MiB inflated).
    pub zip_max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 20 * 1024 * 1024,
            max_rows: 100_000,
            reader_memory_mb: 2048,
            reader_seconds: 60,
            zip_max_entries: 10_000,
            zip_max_inflated_bytes: 512 * 1024 * 1024,
            zip_max_ratio: 200,
        }
    }
}

fn default_deadline_day() -> u32 {
    5
}
fn default_tolerance() -> f64 {
    0.10
}
fn default_time_zone() -> String {
    "Asia/Shanghai".into()
}
fn default_tz() -> Tz {
    chrono_tz::Asia::Shanghai
}
fn default_true() -> bool {
    true
}

/// One step of a key path, for locating a key's line.
#[derive(Debug, Clone)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

impl Config {
    /// Read and validate the config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let src = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // Absolute, so that every path the ledger stores (destinations, attachments) still
        // resolves when tally is later run from another folder.
        let base = std::path::absolute(base).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&src, path, &base)
    }

    /// Parse and validate config text; `path` is only used in messages.
    pub fn parse(src: &str, path: &Path, base_dir: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(src).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config.base_dir = base_dir.to_path_buf();
        let problems = config.problems();
        if let Some((segs, message)) = problems.into_iter().next() {
            let line = locate(src, &segs);
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                key: key_name(&segs),
                message,
            });
        }
        config.tz = config
            .plan
            .time_zone
            .parse()
            .unwrap_or_else(|_| default_tz());
        Ok(config)
    }

    /// Every semantic problem, with the key path at fault.
    fn problems(&self) -> Vec<(Vec<Seg<'_>>, String)> {
        let mut out: Vec<(Vec<Seg<'_>>, String)> = Vec::new();
        let plan = &self.plan;
        if !(2000..=2100).contains(&plan.year) {
            out.push((
                vec![Seg::Key("plan"), Seg::Key("year")],
                format!("year {} is outside 2000..=2100", plan.year),
            ));
        }
        if !(1..=28).contains(&plan.deadline_day) {
            out.push((
                vec![Seg::Key("plan"), Seg::Key("deadline_day")],
                format!("must be a day 1..=28, found {}", plan.deadline_day),
            ));
        }
        if !(0.0..1.0).contains(&plan.tolerance) {
            out.push((
                vec![Seg::Key("plan"), Seg::Key("tolerance")],
                format!("must be in [0, 1), found {}", plan.tolerance),
            ));
        }
        if plan.time_zone.parse::<Tz>().is_err() {
            out.push((
                vec![Seg::Key("plan"), Seg::Key("time_zone")],
                format!(
                    "unknown time zone {:?} (use an IANA name such as Asia/Shanghai)",
                    plan.time_zone
                ),
            ));
        }
        match plan.schedule {
            ScheduleKind::Linear if !plan.milestones.is_empty() => out.push((
                vec![Seg::Key("plan"), Seg::Key("milestones")],
                "milestones are given but schedule is \"linear\"; set schedule = \"milestones\""
                    .into(),
            )),
            ScheduleKind::Milestones if plan.milestones.is_empty() => out.push((
                vec![Seg::Key("plan"), Seg::Key("schedule")],
                "schedule = \"milestones\" needs a [plan.milestones] table".into(),
            )),
            _ => {}
        }
        let mut last = 0.0;
        for (month, fraction) in &plan.milestones {
            let at = vec![Seg::Key("plan"), Seg::Key("milestones"), Seg::Key(month)];
            match crate::plan::YearMonth::parse(month) {
                Some(ym) if ym.year == plan.year => {}
                _ => out.push((
                    at.clone(),
                    format!("{month:?} is not a month YYYY-MM of {}", plan.year),
                )),
            }
            if !(0.0..=1.0).contains(fraction) || *fraction < last {
                out.push((
                    at,
                    format!(
                        "fraction {fraction} must be within [0, 1] and not below the month before"
                    ),
                ));
            }
            last = *fraction;
        }

        if self.categories.is_empty() {
            out.push((
                vec![Seg::Key("categories")],
                "at least one category is needed".into(),
            ));
        }
        let mut seen: HashMap<String, String> = HashMap::new();
        for (i, c) in self.categories.iter().enumerate() {
            for (j, label) in std::iter::once(&c.name).chain(&c.aliases).enumerate() {
                let at = if j == 0 {
                    vec![Seg::Key("categories"), Seg::Index(i), Seg::Key("name")]
                } else {
                    vec![Seg::Key("categories"), Seg::Index(i), Seg::Key("aliases")]
                };
                if fold(label).is_empty() {
                    out.push((at, "a category name or alias is empty".into()));
                } else if let Some(prev) = seen.insert(fold(label), c.name.clone())
                    && (prev != c.name || j == 0)
                {
                    out.push((
                        at,
                        format!("{label:?} is already used by category {prev:?}"),
                    ));
                }
            }
        }

        if self.units.is_empty() {
            out.push((
                vec![Seg::Key("units")],
                "at least one unit is needed".into(),
            ));
        }
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut folders: HashMap<String, String> = HashMap::new();
        for (i, u) in self.units.iter().enumerate() {
            for (j, label) in std::iter::once(&u.name).chain(&u.aliases).enumerate() {
                let at = if j == 0 {
                    vec![Seg::Key("units"), Seg::Index(i), Seg::Key("name")]
                } else {
                    vec![Seg::Key("units"), Seg::Index(i), Seg::Key("aliases")]
                };
                if fold(label).is_empty() {
                    out.push((at, "a unit name or alias is empty".into()));
                } else if let Some(prev) = seen.insert(fold(label), u.name.clone())
                    && (prev != u.name || j == 0)
                {
                    out.push((at, format!("{label:?} is already used by unit {prev:?}")));
                }
            }
            let folder = u.folder();
            let at = vec![Seg::Key("units"), Seg::Index(i), Seg::Key("folder")];
            if folder.is_empty()
                || folder.contains(['/', '\\'])
                || folder == "."
                || folder == ".."
                || folder.starts_with('.')
            {
                out.push((
                    at,
                    format!("folder {folder:?} must be one plain folder name"),
                ));
            } else if let Some(prev) = folders.insert(fold(folder), u.name.clone()) {
                out.push((
                    at,
                    format!("folder {folder:?} is already used by unit {prev:?}"),
                ));
            }
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

        for (unit, per_cat) in &self.targets {
            let at = vec![Seg::Key("targets"), Seg::Key(unit.as_str())];
            if !self.units.iter().any(|u| &u.name == unit) {
                out.push((
                    at.clone(),
                    format!("{unit:?} is not the name of a unit in [[units]]"),
                ));
                continue;
            }
            for cat in per_cat.keys() {
                if !self.categories.iter().any(|c| &c.name == cat) {
                    out.push((
                        vec![
                            Seg::Key("targets"),
                            Seg::Key(unit.as_str()),
                            Seg::Key(cat.as_str()),
                        ],
                        format!("{cat:?} is not the name of a category in [[categories]]"),
                    ));
                }
            }
        }
        for u in &self.units {
            for c in &self.categories {
                if self.target(&u.name, &c.name).is_none() {
                    out.push((
                        vec![Seg::Key("targets")],
                        format!("no target for unit {:?}, category {:?}", u.name, c.name),
                    ));
                }
            }
        }

        let l = &self.limits;
        for (key, zero) in [
            ("max_file_bytes", l.max_file_bytes == 0),
            ("max_rows", l.max_rows == 0),
            ("reader_memory_mb", l.reader_memory_mb == 0),
            ("reader_seconds", l.reader_seconds == 0),
            ("zip_max_entries", l.zip_max_entries == 0),
            ("zip_max_inflated_bytes", l.zip_max_inflated_bytes == 0),
            ("zip_max_ratio", l.zip_max_ratio == 0),
        ] {
            if zero {
                out.push((
                    vec![Seg::Key("limits"), Seg::Key(key)],
                    "must be above 0".into(),
                ));
            }
        }
        let w = &self.watch;
        for (key, value, min) in [
            ("poll_interval_secs", w.poll_interval_secs, 0.1),
            ("rescan_secs", w.rescan_secs, 1.0),
            ("settle_secs", w.settle_secs, 0.05),
            ("min_age_secs", w.min_age_secs, 0.0),
        ] {
            if !(value.is_finite() && (min..=86_400.0).contains(&value)) {
                out.push((
                    vec![Seg::Key("watch"), Seg::Key(key)],
                    format!("must be a number of seconds from {min} to 86400, found {value}"),
                ));
            }
        }
        for (path, message) in self.mail.problems() {
            let mut at = vec![Seg::Key("mail")];
            at.extend(path.split('.').map(Seg::Key));
            out.push((at, message));
        }
        out
    }

    /// Target of a unit and category (canonical names).
    pub fn target(&self, unit: &str, category: &str) -> Option<u32> {
        self.targets.get(unit)?.get(category).copied()
    }

    /// The unit a label names (name or alias, after folding).
    pub fn find_unit(&self, label: &str) -> Option<&Unit> {
        let f = fold(label);
        if f.is_empty() {
            return None;
        }
        self.units
            .iter()
            .find(|u| fold(&u.name) == f || u.aliases.iter().any(|a| fold(a) == f))
    }

    /// The unit whose drop folder has this name.
    pub fn unit_by_folder(&self, folder: &str) -> Option<&Unit> {
        self.units
            .iter()
            .find(|u| u.folder() == folder)
            .or_else(|| self.units.iter().find(|u| fold(u.folder()) == fold(folder)))
    }

    /// The category a label names (name or alias, after folding).
    pub fn find_category(&self, label: &str) -> Option<&Category> {
        let f = fold(label);
        if f.is_empty() {
            return None;
        }
        self.categories
            .iter()
            .find(|c| fold(&c.name) == f || c.aliases.iter().any(|a| fold(a) == f))
    }

    /// Resolve a configured path against the config's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    pub fn watch_root(&self) -> PathBuf {
        self.resolve(&self.paths.watch_root)
    }
    pub fn archive_dir(&self) -> PathBuf {
        self.resolve(&self.paths.archive)
    }
    pub fn state_path(&self) -> PathBuf {
        self.resolve(&self.paths.state)
    }
    pub fn master_path(&self) -> PathBuf {
        self.resolve(&self.paths.master)
    }
    pub fn outbox_dir(&self) -> PathBuf {
        self.resolve(&self.paths.outbox)
    }
    /// A unit's drop folder.
    pub fn unit_dir(&self, unit: &Unit) -> PathBuf {
        self.watch_root().join(unit.folder())
    }

    /// Canonical category names, in config order.
    pub fn category_names(&self) -> Vec<String> {
        self.categories.iter().map(|c| c.name.clone()).collect()
    }
    /// Canonical unit names, in config order.
    pub fn unit_names(&self) -> Vec<String> {
        self.units.iter().map(|u| u.name.clone()).collect()
    }
}

fn key_name(segs: &[Seg<'_>]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// 1-based line of the deepest key of `segs` that exists in `src` (1 when none does).
fn locate(src: &str, segs: &[Seg<'_>]) -> usize {
    enum Node<'a> {
        Item(&'a toml_edit::Item),
        Table(&'a toml_edit::Table),
    }
    let Ok(doc) = toml_edit::Document::parse(src) else {
        return 1;
    };
    let mut node = Node::Item(doc.as_item());
    let mut offset = 0;
    for seg in segs {
        let next = match (seg, &node) {
            (Seg::Key(k), Node::Item(it)) => it
                .as_table_like()
                .and_then(|t| t.get_key_value(k))
                .map(|(key, it)| (key.span(), Node::Item(it))),
            (Seg::Key(k), Node::Table(t)) => t
                .get_key_value(k)
                .map(|(key, it)| (key.span(), Node::Item(it))),
            (Seg::Index(i), Node::Item(toml_edit::Item::ArrayOfTables(a))) => {
                a.get(*i).map(|t| (t.span(), Node::Table(t)))
            }
            _ => None,
        };
        match next {
            Some((span, n)) => {
                if let Some(span) = span {
                    offset = span.start;
                }
                node = n;
            }
            None => break,
        }
    }
    line_at(src, offset)
}

fn line_at(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str = include_str!("../tally.toml");

    fn parse(src: &str) -> Result<Config, ConfigError> {
        Config::parse(src, Path::new("tally.toml"), Path::new("/base"))
    }

    #[test]
    fn the_reference_plan_loads() {
        let c = parse(REFERENCE).unwrap();
        assert_eq!(c.plan.year, 2020);
        assert_eq!(
            c.unit_names(),
            ["西兴街道", "长河街道", "浦沿街道", "江北科技园"]
        );
        assert_eq!(
            c.category_names(),
            ["企业主要负责人", "安全生产管理人员", "其他从业人员"]
        );
        for u in c.unit_names() {
            assert_eq!(c.target(&u, "企业主要负责人"), Some(70));
            assert_eq!(c.target(&u, "安全生产管理人员"), Some(80));
            assert_eq!(c.target(&u, "其他从业人员"), Some(5000));
        }
        assert_eq!(c.find_unit("西興街道").unwrap().name, "西兴街道");
        assert_eq!(
            c.find_category("企業主要負責人").unwrap().name,
            "企业主要负责人"
        );
        assert_eq!(c.master_path(), Path::new("/base/output/master.xlsx"));
        assert_eq!(c.tz, chrono_tz::Asia::Shanghai);
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let src = REFERENCE.replacen("[plan]\n", "[plan]\ncolour = \"red\"\n", 1);
        let err = parse(&src).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn a_target_for_an_unknown_unit_names_key_and_line() {
        let src = format!("{REFERENCE}\n[targets.\"西湖街道\"]\n\"企业主要负责人\" = 1\n");
        let err = parse(&src).unwrap_err();
        let ConfigError::Invalid { line, key, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(key, "targets.西湖街道");
        let expected = src.lines().position(|l| l.contains("西湖街道")).unwrap() + 1;
        assert_eq!(*line, expected, "{err}");
    }

    #[test]
    fn a_bad_contact_address_names_the_unit_entry() {
        let src = REFERENCE.replacen("xixing@", "xixing at ", 1);
        let err = parse(&src).unwrap_err();
        let ConfigError::Invalid { line, key, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(key, "units[0].contacts");
        let expected = src.lines().position(|l| l.contains("xixing at")).unwrap() + 1;
        assert_eq!(*line, expected, "{err}");
    }

    #[test]
    fn bad_plan_values_are_refused() {
        for (from, to, key) in [
            ("deadline_day = 5", "deadline_day = 31", "plan.deadline_day"),
            ("tolerance = 0.10", "tolerance = 1.5", "plan.tolerance"),
            (
                "time_zone = \"Asia/Shanghai\"",
                "time_zone = \"Mars/Base\"",
                "plan.time_zone",
            ),
        ] {
            assert!(REFERENCE.contains(from), "{from}");
            let err = parse(&REFERENCE.replacen(from, to, 1)).unwrap_err();
            let ConfigError::Invalid { key: k, .. } = &err else {
                panic!("{err}")
            };
            assert_eq!(k, key);
        }
    }
}
