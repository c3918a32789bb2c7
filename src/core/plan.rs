//! The plan (DESIGN.md §2): title, year, deadline day, schedule, tolerance and time zone, the
//! categories, the units and their targets — the part of tally.toml the domain rules read,
//! with its validation. Reading the file is the config edge's job (`crate::config`); every
//! edge owns its own settings beside this.

use crate::core::calendar::WorkCalendar;
use crate::core::fold::fold;
use chrono_tz::Tz;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// A problem found in the plan: where (a key path) and what.
pub type Problem<'a> = (Vec<Seg<'a>>, String);

/// One step of a key path in tally.toml, so that the file's reader can name the key and its
/// line.
#[derive(Debug, Clone)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
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
    /// Rest days and adjusted working days (`[plan.calendar]`); none: deadlines are never
    /// moved.
    #[serde(default)]
    pub calendar: Option<WorkCalendar>,
    /// Personnel categories (`[[categories]]`), in config order.
    #[serde(skip)]
    pub categories: Vec<Category>,
    /// Units (`[[units]]`), in config order.
    #[serde(skip)]
    pub units: Vec<Unit>,
    /// targets[unit][category] = people to train in the plan year (`[targets]`).
    #[serde(skip)]
    pub targets: BTreeMap<String, BTreeMap<String, u32>>,
    /// The plan's time zone, parsed from `time_zone`.
    #[serde(skip, default = "default_tz")]
    pub tz: Tz,
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

impl Plan {
    /// Every semantic problem, with the key path at fault.
    pub fn problems(&self) -> Vec<Problem<'_>> {
        let mut out: Vec<Problem<'_>> = Vec::new();
        let plan = self;
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
                    "unknown time zone {:?} (use an IANA name of Asia, such as Asia/Shanghai or Asia/Urumqi, an Etc/GMT offset, or UTC)",
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
            match crate::core::calendar::YearMonth::parse(month) {
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
            // A folder that defaults to the unit's name is that name's problem.
            let key = if u.folder.is_some() { "folder" } else { "name" };
            let at = vec![Seg::Key("units"), Seg::Index(i), Seg::Key(key)];
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
            } else if !portable_folder_name(folder) {
                out.push((
                    at,
                    format!(
                        "folder {folder:?} is not a valid folder name on Windows (no control characters, none of < > : \" | ? *, no trailing dot or space, not CON, PRN, AUX, NUL, COM1–9 or LPT1–9); the drop folders may live on a Windows share"
                    ),
                ));
            } else if let Some(prev) = folders.insert(fold(folder), u.name.clone()) {
                out.push((
                    at,
                    format!("folder {folder:?} is already used by unit {prev:?}"),
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

    /// Canonical category names, in config order.
    pub fn category_names(&self) -> Vec<String> {
        self.categories.iter().map(|c| c.name.clone()).collect()
    }
    /// Canonical unit names, in config order.
    pub fn unit_names(&self) -> Vec<String> {
        self.units.iter().map(|u| u.name.clone()).collect()
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

/// The reference plan (the repository's tally.toml), for tests of the core.
/// Whether `name` is a folder name both Windows and Unix accept (the drop folders may be on a
/// Windows share, and a plan folder may move between systems).
fn portable_folder_name(name: &str) -> bool {
    const RESERVED: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];
    let stem = name
        .split('.')
        .next()
        .unwrap_or(name)
        .trim_end()
        .to_ascii_uppercase();
    let numbered = |p: &str| {
        stem.len() == 4
            && stem.starts_with(p)
            && stem[3..].chars().all(|c| ('1'..='9').contains(&c))
    };
    !name
        .chars()
        .any(|c| c.is_control() || "<>:\"|?*".contains(c))
        && !name.ends_with(['.', ' '])
        && !RESERVED.contains(&stem.as_str())
        && !numbered("COM")
        && !numbered("LPT")
}

#[cfg(test)]
pub(crate) fn reference() -> Plan {
    #[derive(Deserialize)]
    struct File {
        plan: Plan,
        categories: Vec<Category>,
        units: Vec<Unit>,
        targets: BTreeMap<String, BTreeMap<String, u32>>,
    }
    let file: File = toml::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tally.toml"
    )))
    .expect("the reference plan parses");
    let mut plan = file.plan;
    plan.categories = file.categories;
    plan.units = file.units;
    plan.targets = file.targets;
    plan.tz = plan.time_zone.parse().expect("a known time zone");
    assert!(plan.problems().is_empty(), "{:?}", plan.problems());
    plan
}

#[cfg(test)]
mod folder_tests {
    use super::portable_folder_name as ok;

    #[test]
    fn folder_names_must_be_valid_on_windows_too() {
        for good in [
            "西兴街道",
            "江北科技园",
            "unit 1",
            "COM10",
            "CONSOLE",
            "a.b",
        ] {
            assert!(ok(good), "{good}");
        }
        for bad in [
            "西兴街道\r\nBcc: x",
            "a:b",
            "a?",
            "a*",
            "a|b",
            "<a>",
            "\"a\"",
            "trailing.",
            "trailing ",
            "CON",
            "nul.txt",
            "com1",
            "LPT9",
        ] {
            assert!(!ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_unit_name_that_makes_a_bad_folder_is_named_as_the_culprit() {
        let mut plan = super::reference();
        plan.units[0].name = "西兴街道?".into();
        plan.units[0].folder = None;
        let problems = plan.problems();
        assert!(
            problems
                .iter()
                .any(|(at, m)| format!("{at:?}").contains("name")
                    && m.contains("not a valid folder name on Windows")),
            "{problems:?}"
        );
    }
}
