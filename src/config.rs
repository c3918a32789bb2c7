//! `tally.toml`, read and validated once (serde, `deny_unknown_fields`): the plan (the core's
//! `Plan`: `[plan]`, `[[categories]]`, `[[units]]`, `[targets]`) and each edge's own section
//! (`[limits]` of the reader, `[master]`, `[progress]`, `[forms]`, `[watch]`, `[mail]`), each
//! validated by its owner; every error names the key and line. No other module reads the
//! file; paths are resolved against the config file's folder here.

use crate::core::plan::{Category, Plan, Problem, Seg, Unit};
use crate::forms::FormsSettings;
use crate::ledger::settings::LedgerSettings;
use crate::mail::settings::MailSettings;
use crate::master::settings::MasterSettings;
use crate::progress::ProgressSettings;
use crate::read::Limits;
use crate::watch::settings::WatchSettings;
use serde::Deserialize;
use std::collections::BTreeMap;
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

/// The whole of tally.toml: the plan (the domain's part) and each edge's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[plan]`, `[[categories]]`, `[[units]]` and `[targets]`.
    pub plan: Plan,
    pub paths: Paths,
    /// Limits of the reader (file size, rows, the child's memory and time, zip checks).
    pub limits: Limits,
    /// The master workbook: how many earlier versions to keep.
    pub master: MasterSettings,
    /// Each unit's progress workbook in its folder.
    pub progress: ProgressSettings,
    /// The blank form of the month due, kept in each unit's folder.
    pub forms: FormsSettings,
    /// The daemon: how it watches and when a dropped file counts as complete.
    pub watch: WatchSettings,
    /// Mail: transport, addresses, the reminder and digest schedule, retries.
    pub mail: MailSettings,
    /// Where the ledger lives: the SQLite file, or a PostgreSQL server.
    pub ledger: LedgerSettings,
    /// Folder of the config file; every relative path is resolved against it.
    pub base_dir: PathBuf,
}

/// tally.toml as written: one table per section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    plan: Plan,
    categories: Vec<Category>,
    units: Vec<Unit>,
    targets: BTreeMap<String, BTreeMap<String, u32>>,
    #[serde(default)]
    paths: Paths,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    master: MasterSettings,
    #[serde(default)]
    progress: ProgressSettings,
    #[serde(default)]
    forms: FormsSettings,
    #[serde(default)]
    watch: WatchSettings,
    #[serde(default)]
    mail: MailSettings,
    #[serde(default)]
    ledger: LedgerSettings,
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

    /// Only `[limits]` of the config file at `path`, for the reader child: cheaper than
    /// [`Config::load`] (no plan to validate) and never an error — a file that cannot be read
    /// or parsed, or limits that cannot be used, give the defaults.
    pub fn reader_limits(path: &Path) -> Limits {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|src| {
                // The table's own lines when they alone say what the limits are (`check` reads
                // them before anything else; the whole file takes ~3 times as long).
                match limits_table(&src) {
                    Some(table) => toml::from_str::<Limits>(table).ok(),
                    None => limits_of_whole(&src),
                }
            })
            .filter(|l| l.problems().is_empty())
            .unwrap_or_default()
    }

    /// Parse and validate config text; `path` is only used in messages.
    pub fn parse(src: &str, path: &Path, base_dir: &Path) -> Result<Config, ConfigError> {
        let file: File = toml::from_str(src).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut plan = file.plan;
        plan.categories = file.categories;
        plan.units = file.units;
        plan.targets = file.targets;
        let mut config = Config {
            plan,
            paths: file.paths,
            limits: file.limits,
            master: file.master,
            progress: file.progress,
            forms: file.forms,
            watch: file.watch,
            mail: file.mail,
            ledger: file.ledger,
            base_dir: base_dir.to_path_buf(),
        };
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
        if let Ok(tz) = config.plan.time_zone.parse() {
            config.plan.tz = tz;
        }
        Ok(config)
    }

    /// Every semantic problem, with the key path at fault: the plan's, then each edge's.
    fn problems(&self) -> Vec<Problem<'_>> {
        let mut out = self.plan.problems();
        for (key, message) in self.limits.problems() {
            out.push((vec![Seg::Key("limits"), Seg::Key(key)], message));
        }
        for (key, message) in self.progress.problems() {
            out.push((vec![Seg::Key("progress"), Seg::Key(key)], message));
        }
        for (key, message) in self.forms.problems() {
            out.push((vec![Seg::Key("forms"), Seg::Key(key)], message));
        }
        for (key, message) in self.watch.problems() {
            out.push((vec![Seg::Key("watch"), Seg::Key(key)], message));
        }
        for (i, unit) in self.watch.units.iter().enumerate() {
            if self.plan.find_unit(unit).is_none() {
                out.push((
                    vec![Seg::Key("watch"), Seg::Key("units"), Seg::Index(i)],
                    format!(
                        "{unit:?} is not a unit of the plan (units: {})",
                        self.plan.unit_names().join(", ")
                    ),
                ));
            }
        }
        for (key, message) in self.ledger.problems() {
            out.push((vec![Seg::Key("ledger"), Seg::Key(key)], message));
        }
        out.extend(crate::mail::settings::contact_problems(&self.plan));
        for (path, message) in self.mail.problems() {
            let mut at = vec![Seg::Key("mail")];
            at.extend(path.split('.').map(Seg::Key));
            out.push((at, message));
        }
        out
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
    /// Where the ledger lives: the PostgreSQL server of `[ledger] url`, else the SQLite file
    /// at `[paths] state`.
    pub fn ledger_location(&self) -> crate::ledger::Location {
        match &self.ledger.url {
            Some(url) => crate::ledger::Location::Postgres {
                url: url.clone(),
                password: self.ledger.password.clone(),
                ca_file: self.ledger.ca_file.as_ref().map(|f| self.resolve(f)),
            },
            None => crate::ledger::Location::Sqlite(self.state_path()),
        }
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

/// The `[limits]` of plan-file text, the whole text parsed (None: it does not parse).
fn limits_of_whole(src: &str) -> Option<Limits> {
    #[derive(Deserialize)]
    struct OnlyLimits {
        #[serde(default)]
        limits: Limits,
    }
    toml::from_str::<OnlyLimits>(src).map(|f| f.limits).ok()
}

/// The lines of the `[limits]` table of plan-file text (empty: there is no such table), when
/// nothing else in the text can bear on the limits: no other line names them, no multi-line
/// string could hide that header or hold a line of the table, no escape could spell the name.
/// None: only the whole text says.
fn limits_table(src: &str) -> Option<&str> {
    const NAMING: [&str; 5] = ["limits", "\"\"\"", "'''", "\\u", "\\U"];
    const MULTI_LINE: [&str; 2] = ["\"\"\"", "'''"];
    let mut header: Option<std::ops::Range<usize>> = None;
    let mut end = src.len();
    let mut at = 0;
    for line in src.split_inclusive('\n') {
        let t = line.trim();
        if header.is_none() {
            if t == "[limits]" {
                header = Some(at..at + line.len());
            }
        } else if end == src.len() && t.starts_with('[') {
            end = at;
        }
        at += line.len();
    }
    let (before, table, after) = match &header {
        Some(h) => (&src[..h.start], &src[h.end..end], &src[end..]),
        None => (src, "", ""),
    };
    let has = |text: &str, words: &[&str]| {
        let text = text.as_bytes();
        words
            .iter()
            .any(|w| memchr::memmem::find(text, w.as_bytes()).is_some())
    };
    if has(before, &NAMING) || has(after, &NAMING) || has(table, &MULTI_LINE) {
        return None;
    }
    Some(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_child_reads_only_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tally.toml");
        let reference = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tally.toml"));
        std::fs::write(
            &path,
            reference.replace("max_rows = 100000", "max_rows = 7"),
        )
        .unwrap();
        assert_eq!(Config::reader_limits(&path).max_rows, 7);
        // A plan that does not validate still gives its limits; unusable ones give defaults.
        std::fs::write(&path, "[plan]\nyear = \"x\"\n[limits]\nmax_rows = 9\n").unwrap();
        assert_eq!(Config::reader_limits(&path).max_rows, 9);
        std::fs::write(&path, "[limits]\nmax_rows = 0\n").unwrap();
        assert_eq!(
            Config::reader_limits(&path).max_rows,
            Limits::default().max_rows
        );
        assert_eq!(
            Config::reader_limits(&dir.path().join("missing.toml")).max_rows,
            Limits::default().max_rows
        );
    }

    #[test]
    fn the_limits_table_alone_says_what_the_whole_file_says_or_is_not_used() {
        let reference = include_str!("../tally.toml");
        let limited = reference.replace("max_rows = 100000", "max_rows = 7");
        let at_end = format!(
            "{}\n[limits]\nmax_rows = 11\n",
            reference.replace("[limits]", "[spare]")
        );
        let said_alone = [
            reference,
            limited.as_str(),
            "",
            "[plan]\nyear = 2020\n",
            "[limits]\nmax_rows = 5\n",
            "[limits]\r\nmax_rows = 5\r\n[mail]\r\nfrom = \"x\"\r\n",
            at_end.as_str(),
            "[limits]\nmax_rows = \"many\"\n",
        ];
        for src in said_alone {
            let table = limits_table(src).unwrap_or_else(|| panic!("not alone: {src:?}"));
            assert_eq!(
                toml::from_str::<Limits>(table).ok(),
                limits_of_whole(src),
                "{src:?}"
            );
        }
        assert_eq!(
            limits_table(&limited).and_then(|t| toml::from_str::<Limits>(t).ok()),
            Some(Limits {
                max_rows: 7,
                ..Limits::default()
            })
        );
        // Where something else could bear on the limits, the whole file is parsed.
        let not_alone = [
            "limits = { max_rows = 5 }\n",
            "limits.max_rows = 5\n",
            "[limits] # caps\nmax_rows = 5\n",
            "[limits]\nmax_rows = 5\n[limits.more]\n",
            "note = \"\"\"\n[limits]\nmax_rows = 5\n\"\"\"\n",
            "[limits]\nmax_rows = 5\nnote = '''\n[x]\n'''\n",
            "\"\\u006cimits\".max_rows = 5\n",
            "[ limits ]\nmax_rows = 5\n",
        ];
        for src in not_alone {
            assert_eq!(limits_table(src), None, "{src:?}");
        }
    }

    const REFERENCE: &str = include_str!("../tally.toml");

    fn parse(src: &str) -> Result<Config, ConfigError> {
        Config::parse(src, Path::new("tally.toml"), Path::new("/base"))
    }

    #[test]
    fn the_reference_plan_loads() {
        let c = parse(REFERENCE).unwrap();
        assert_eq!(c.plan.year, 2020);
        assert_eq!(
            c.plan.unit_names(),
            ["西兴街道", "长河街道", "浦沿街道", "江北科技园"]
        );
        assert_eq!(
            c.plan.category_names(),
            ["企业主要负责人", "安全生产管理人员", "其他从业人员"]
        );
        for u in c.plan.unit_names() {
            assert_eq!(c.plan.target(&u, "企业主要负责人"), Some(70));
            assert_eq!(c.plan.target(&u, "安全生产管理人员"), Some(80));
            assert_eq!(c.plan.target(&u, "其他从业人员"), Some(5000));
        }
        assert_eq!(c.plan.find_unit("西興街道").unwrap().name, "西兴街道");
        assert_eq!(
            c.plan.find_category("企業主要負責人").unwrap().name,
            "企业主要负责人"
        );
        assert_eq!(c.master_path(), Path::new("/base/output/master.xlsx"));
        assert_eq!(c.plan.tz, chrono_tz::Asia::Shanghai);
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
