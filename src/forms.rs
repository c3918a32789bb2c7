//! The blank form waiting in each unit's folder: `<unit folder>/报表模板/<unit>_<YYYY>年<MM>月_
//! 培训台账.xlsx`, the template for the month now due with 填报单位 and 报送月份 filled in, kept
//! current atomically ([`publish_all`]) and the older months' forms removed; also the template
//! of the plan as `tally template` writes it ([`render`]). It must not take anything in that
//! folder as a return, nor rewrite or remove a form a clerk holds open or has saved over.

use crate::config::Config;
use crate::core::calendar::{self, YearMonth};
use crate::core::plan::{Plan, Unit};
use crate::durable::{self, PublishError, Published};
use crate::template::{DEFAULT_INSTRUCTIONS, TemplateSpec};
use chrono::DateTime;
use chrono_tz::Tz;
use rust_xlsxwriter::XlsxError;
use serde::Deserialize;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// `[forms]` in tally.toml: the form kept in each unit's folder.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FormsSettings {
    /// Keep this month's form in every unit's folder.
    pub enabled: bool,
    /// The sub-folder of a unit's folder that holds it; the watcher takes nothing from it.
    pub folder: String,
    /// Its file name: `{unit}` the unit's name, `{year}` four digits, `{month}` two.
    pub file_name: String,
}

impl Default for FormsSettings {
    fn default() -> Self {
        FormsSettings {
            enabled: true,
            folder: "报表模板".into(),
            file_name: "{unit}_{year}年{month}月_培训台账.xlsx".into(),
        }
    }
}

/// One piece of a file-name pattern.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Unit,
    Year,
    Month,
}

/// `{unit}_{year}年{month}月.xlsx` in pieces; an unknown or unclosed `{…}` is an error.
fn pieces(pattern: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("{pattern:?}: a '{{' without its '}}'"))?;
        out.push(match &after[..close] {
            "unit" => Piece::Unit,
            "year" => Piece::Year,
            "month" => Piece::Month,
            other => {
                return Err(format!(
                    "{pattern:?}: unknown {{{other}}}; use {{unit}}, {{year}} and {{month}}"
                ));
            }
        });
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// `s` after its first `n` characters, when they are ASCII digits.
fn after_digits(s: &str, n: usize) -> Option<&str> {
    let head = s.get(..n)?;
    head.bytes().all(|b| b.is_ascii_digit()).then(|| &s[n..])
}

impl FormsSettings {
    /// Every value that cannot be used, with its key under `[forms]`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let folder = &self.folder;
        let reserved = [
            crate::core::form::ACCEPTED_DIR,
            crate::core::form::REJECTED_DIR,
        ];
        if folder.trim().is_empty()
            || folder.contains(['/', '\\'])
            || folder.starts_with(['.', '~'])
            || reserved.contains(&folder.as_str())
        {
            out.push((
                "folder",
                format!("{folder:?} must be a plain folder name other than 已接收 and 退回"),
            ));
        }
        let name = &self.file_name;
        if let Err(e) = pieces(name) {
            out.push(("file_name", e));
        } else if name.contains(['/', '\\'])
            || name.starts_with(['.', '~'])
            || !name.to_lowercase().ends_with(".xlsx")
        {
            out.push((
                "file_name",
                format!("{name:?} must be a plain file name ending in .xlsx"),
            ));
        }
        out
    }

    /// The form's file name for `unit` and `month`.
    pub fn file_name(&self, unit: &str, month: YearMonth) -> String {
        // `problems` refused a pattern that does not parse, so the fallback is never used.
        let Ok(pieces) = pieces(&self.file_name) else {
            return self.file_name.clone();
        };
        pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => (*t).to_string(),
                Piece::Unit => unit.to_string(),
                Piece::Year => format!("{:04}", month.year),
                Piece::Month => format!("{:02}", month.month),
            })
            .collect()
    }

    /// Whether `name` is `unit`'s form of some month.
    fn is_form_of(&self, unit: &str, name: &str) -> bool {
        let Ok(pieces) = pieces(&self.file_name) else {
            return false;
        };
        let mut rest = Some(name);
        for piece in &pieces {
            rest = rest.and_then(|r| match piece {
                Piece::Text(t) => r.strip_prefix(t),
                Piece::Unit => r.strip_prefix(unit),
                Piece::Year => after_digits(r, 4),
                Piece::Month => after_digits(r, 2),
            });
        }
        rest == Some("")
    }
}

/// A form that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FormsError {
    /// rust_xlsxwriter refused the template (a plan year outside Excel's dates).
    #[error("{unit}: cannot build the template: {source}")]
    Xlsx { unit: String, source: XlsxError },
    /// A file step failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// The month whose return is due at `now`: the month before `now`'s (in the plan's time
/// zone), kept within the plan year — January's form in January, December's after the year.
pub fn due_month(plan: &Plan, now: DateTime<Tz>) -> YearMonth {
    let this = calendar::current_month(now.with_timezone(&plan.tz));
    let previous = match this.month {
        1 => YearMonth {
            year: this.year - 1,
            month: 12,
        },
        m => YearMonth {
            year: this.year,
            month: m - 1,
        },
    };
    let first = YearMonth {
        year: plan.year,
        month: 1,
    };
    let last = YearMonth {
        year: plan.year,
        month: 12,
    };
    previous.clamp(first, last)
}

/// The instructions sheet's text: `templates/填报说明.txt` beside the plan when the bureau has
/// written one, else the built-in text; `{deadline_day}` becomes the plan's deadline day.
pub fn instructions(config: &Config) -> String {
    let custom = config.base_dir.join("templates").join("填报说明.txt");
    std::fs::read_to_string(&custom)
        .unwrap_or_else(|_| DEFAULT_INSTRUCTIONS.to_string())
        .replace("{deadline_day}", &config.plan.deadline_day.to_string())
}

/// The plan's return template, 填报单位 and 报送月份 filled in when given.
pub fn render(
    config: &Config,
    instructions: &str,
    unit: Option<&str>,
    month: Option<YearMonth>,
) -> Result<Vec<u8>, XlsxError> {
    render_stamped(config, instructions, unit, month, None)
}

fn render_stamped(
    config: &Config,
    instructions: &str,
    unit: Option<&str>,
    month: Option<YearMonth>,
    stamp: Option<&str>,
) -> Result<Vec<u8>, XlsxError> {
    let units = config.plan.unit_names();
    let categories = config.plan.category_names();
    crate::template::render_stamped(
        &TemplateSpec {
            plan_title: &config.plan.title,
            year: config.plan.year,
            unit,
            month,
            units: &units,
            categories: &categories,
            instructions,
        },
        stamp.map(|s| (STAMP_PROPERTY, s)),
    )
}

/// The custom document property of a form that holds its [`inputs_stamp`].
const STAMP_PROPERTY: &str = "tally-form";

/// What every form of a run is made from besides its unit and month: the template's own code
/// (its source, and tally's version), the plan's title, year, units and categories, and the
/// instructions — hashed once for all units ([`inputs_stamp`] adds the rest).
fn shared_inputs(config: &Config, instructions: &str) -> sha2::Sha256 {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    let mut part = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    part(include_bytes!("template.rs"));
    part(include_bytes!("excel.rs"));
    part(env!("CARGO_PKG_VERSION").as_bytes());
    part(config.plan.title.as_bytes());
    part(&config.plan.year.to_le_bytes());
    for name in config.plan.unit_names() {
        part(name.as_bytes());
    }
    part(b"--");
    for name in config.plan.category_names() {
        part(name.as_bytes());
    }
    part(b"--");
    part(instructions.as_bytes());
    hash
}

/// A digest of everything `unit`'s form of `month` is made from ([`shared_inputs`], the unit
/// and the month). A form that carries it, as tally wrote it, need not be rendered again
/// (rendering hundreds of units' forms costs seconds).
fn inputs_stamp(shared: &sha2::Sha256, unit: &str, month: YearMonth) -> String {
    use sha2::Digest;
    let mut hash = shared.clone();
    for bytes in [unit.as_bytes(), month.to_string().as_bytes()] {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    hex::encode(hash.finalize())
}

/// The folder of `unit`'s form (created by `tally init` and by [`publish_all`]).
pub fn folder(config: &Config, unit: &Unit) -> PathBuf {
    config.unit_dir(unit).join(&config.forms.folder)
}

/// One unit's name and what became of its form.
pub type UnitOutcome = (String, Result<Published, FormsError>);

/// Put the form of the month due at `now` into every unit's folder and remove its older
/// months' forms; nothing when `[forms] enabled = false`. A failure for one unit is logged and
/// the others still get theirs. The daemon calls this after each burst and when a new month
/// begins (`due_month` changes).
pub fn publish_all(config: &Config, now: DateTime<Tz>) -> Vec<UnitOutcome> {
    if !config.forms.enabled {
        return Vec::new();
    }
    let month = due_month(&config.plan, now);
    let instructions = instructions(config);
    let shared = shared_inputs(config, &instructions);
    // A first start renders every unit's form (~10 ms each): on both cores, in two halves.
    let units = &config.plan.units;
    let half = units.len().div_ceil(2);
    let results: Vec<Result<Published, FormsError>> = std::thread::scope(|scope| {
        let second = scope.spawn(|| {
            units[half..]
                .iter()
                .map(|unit| publish(config, &instructions, &shared, unit, month))
                .collect::<Vec<_>>()
        });
        let mut first: Vec<_> = units[..half]
            .iter()
            .map(|unit| publish(config, &instructions, &shared, unit, month))
            .collect();
        match second.join() {
            Ok(rest) => first.extend(rest),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        first
    });
    let mut out = Vec::new();
    for (unit, result) in units.iter().zip(results) {
        match &result {
            Ok(Published::Written(path)) => {
                tracing::info!(unit = %unit.name, path = %path.display(), "form written")
            }
            Ok(Published::Unchanged(_)) => {}
            Ok(Published::Kept(path)) => {
                tracing::info!(unit = %unit.name, path = %path.display(), "form held open or saved over by a clerk; left as it is")
            }
            Err(e) => tracing::warn!(unit = %unit.name, error = %e, "form not written"),
        }
        out.push((unit.name.clone(), result));
    }
    out
}

/// One unit's form: written unless unchanged, held open or saved over; then the older ones go.
fn publish(
    config: &Config,
    instructions: &str,
    shared: &sha2::Sha256,
    unit: &Unit,
    month: YearMonth,
) -> Result<Published, FormsError> {
    let dir = folder(config, unit);
    // The 报表模板 folder, inside a unit folder that exists (a missing one is the watcher's to
    // recreate).
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(FormsError::Publish(crate::durable::PublishError {
                path: dir,
                what: "cannot create the folder",
                source,
            }));
        }
    }
    let name = config.forms.file_name(&unit.name, month);
    let target = dir.join(&name);
    let stamp = inputs_stamp(shared, &unit.name, month);
    let written = written_by_tally(&target);
    let published = match written {
        // As tally wrote it from the same inputs: rendering it again would give these bytes.
        Some(Some(old)) if old == stamp => Published::Unchanged(target),
        _ => {
            let bytes = render_stamped(
                config,
                instructions,
                Some(&unit.name),
                Some(month),
                Some(&stamp),
            )
            .map_err(|source| FormsError::Xlsx {
                unit: unit.name.clone(),
                source,
            })?;
            let saved_over = written.is_none()
                && target.is_file()
                && std::fs::read(&target).is_ok_and(|old| old != bytes);
            if saved_over {
                Published::Kept(target)
            } else {
                durable::publish(&target, &bytes)?
            }
        }
    };
    remove_older(config, &dir, unit, &name);
    Ok(published)
}

/// Remove `unit`'s forms of other months from `dir`, except one a clerk holds open or has
/// saved over (their work, not ours).
fn remove_older(config: &Config, dir: &Path, unit: &Unit, current: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name == current
            || !config.forms.is_form_of(&unit.name, name)
            || !path.is_file()
            || durable::held_open(&path)
            || !as_written(&path)
        {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(unit = %unit.name, path = %path.display(), "an older month's form removed")
            }
            Err(e) => {
                tracing::warn!(unit = %unit.name, path = %path.display(), error = %e, "cannot remove an older month's form")
            }
        }
    }
}

/// Whether a form is as tally wrote it: no spreadsheet program has saved it since. Excel, WPS
/// and LibreOffice stamp `dcterms:modified` in docProps/core.xml with the time of saving;
/// tally's templates carry a fixed time (`excel::fixed_created_stamp`).
fn as_written(path: &Path) -> bool {
    written_by_tally(path).is_some()
}

/// `Some` when the form is as tally wrote it ([`as_written`]), with the [`inputs_stamp`] it
/// carries (`None` from a tally before stamps); `None` when it is missing, unreadable or saved
/// by a spreadsheet program since.
fn written_by_tally(path: &Path) -> Option<Option<String>> {
    /// core.xml and custom.xml are a few hundred bytes; read no more than this of them.
    const MAX_PART: u64 = 64 * 1024;
    let file = std::fs::File::open(path).ok()?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).ok()?;
    let mut part = |name: &str| {
        let entry = zip.by_name(name).ok()?;
        let mut xml = String::new();
        entry.take(MAX_PART).read_to_string(&mut xml).ok()?;
        Some(xml)
    };
    let core = part("docProps/core.xml")?;
    let modified = element_text(&core, "<dcterms:modified");
    if modified != Some(crate::excel::fixed_created_stamp().as_str()) {
        return None;
    }
    // `<property … name="tally-form"><vt:lpwstr>stamp</vt:lpwstr></property>`
    let stamp = part("docProps/custom.xml").and_then(|custom| {
        let (_, rest) = custom.split_once(&format!("name=\"{STAMP_PROPERTY}\""))?;
        element_text(rest, "<vt:lpwstr").map(str::to_string)
    });
    Some(stamp)
}

/// The text of the first element of `xml` that begins with `open` (`<dcterms:modified`).
fn element_text<'x>(xml: &'x str, open: &str) -> Option<&'x str> {
    xml.split_once(open)
        .and_then(|(_, rest)| rest.split_once('>'))
        .and_then(|(_, rest)| rest.split_once('<'))
        .map(|(value, _)| value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn config() -> Config {
        Config::parse(
            crate::cmd::init::REFERENCE_PLAN,
            Path::new("tally.toml"),
            Path::new("/nonexistent"),
        )
        .unwrap()
    }

    fn at(y: i32, m: u32, d: u32) -> DateTime<Tz> {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(y, m, d, 9, 0, 0)
            .unwrap()
    }

    fn ym(year: i32, month: u32) -> YearMonth {
        YearMonth::new(year, month).unwrap()
    }

    #[test]
    fn the_month_due_is_the_last_one_within_the_plan_year() {
        let plan = config().plan;
        assert_eq!(due_month(&plan, at(2020, 6, 3)), ym(2020, 5));
        assert_eq!(due_month(&plan, at(2020, 6, 30)), ym(2020, 5));
        assert_eq!(due_month(&plan, at(2020, 12, 31)), ym(2020, 11));
        assert_eq!(due_month(&plan, at(2021, 1, 4)), ym(2020, 12));
        assert_eq!(due_month(&plan, at(2021, 7, 1)), ym(2020, 12));
        assert_eq!(due_month(&plan, at(2020, 1, 15)), ym(2020, 1));
        assert_eq!(due_month(&plan, at(2019, 11, 1)), ym(2020, 1));
        // Midnight of 1 July in Shanghai is still 30 June in UTC: the plan's zone decides.
        let utc = chrono_tz::UTC
            .with_ymd_and_hms(2020, 6, 30, 16, 30, 0)
            .unwrap();
        assert_eq!(due_month(&plan, utc), ym(2020, 6));
    }

    #[test]
    fn names_are_made_and_recognised_by_the_pattern() {
        let forms = FormsSettings::default();
        let name = forms.file_name("长河街道", ym(2020, 5));
        assert_eq!(name, "长河街道_2020年05月_培训台账.xlsx");
        assert!(forms.is_form_of("长河街道", &name));
        assert!(forms.is_form_of("长河街道", "长河街道_2019年12月_培训台账.xlsx"));
        for other in [
            "西兴街道_2020年05月_培训台账.xlsx",
            "长河街道_2020年5月_培训台账.xlsx",
            "长河街道_2020年05月_培训台账 (2).xlsx",
            "长河街道_2020年05月_培训台账.xlsx.bak",
            "本单位进度.xlsx",
        ] {
            assert!(!forms.is_form_of("长河街道", other), "{other}");
        }
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = FormsSettings {
            enabled: true,
            folder: "已接收".into(),
            file_name: "{unit}_{day}.xlsx".into(),
        };
        let keys: Vec<&str> = bad.problems().iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["folder", "file_name"]);
        for name in ["a/{unit}.xlsx", "{unit}.xls", "~{unit}.xlsx", "{unit.xlsx"] {
            let forms = FormsSettings {
                file_name: name.into(),
                ..FormsSettings::default()
            };
            assert_eq!(forms.problems().len(), 1, "{name}");
        }
        assert!(FormsSettings::default().problems().is_empty());
    }

    #[test]
    fn a_form_carries_the_stamp_of_its_inputs_and_only_they_change_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = config();
        let stamp_of = |config: &Config, instructions: &str, unit: &str, month: YearMonth| {
            inputs_stamp(&shared_inputs(config, instructions), unit, month)
        };
        let stamp = stamp_of(&config, "说明", "长河街道", ym(2020, 5));
        let form = dir.path().join("form.xlsx");
        let bytes = render_stamped(
            &config,
            "说明",
            Some("长河街道"),
            Some(ym(2020, 5)),
            Some(&stamp),
        )
        .unwrap();
        std::fs::write(&form, bytes).unwrap();
        assert_eq!(written_by_tally(&form), Some(Some(stamp.clone())));
        // Unstamped (`tally template`, a tally before stamps): as written, no stamp.
        std::fs::write(&form, render(&config, "说明", None, None).unwrap()).unwrap();
        assert_eq!(written_by_tally(&form), Some(None));
        let mut other = config.clone();
        other.plan.title.push('！');
        for changed in [
            stamp_of(&config, "说明", "西兴街道", ym(2020, 5)),
            stamp_of(&config, "说明", "长河街道", ym(2020, 6)),
            stamp_of(&config, "说明！", "长河街道", ym(2020, 5)),
            stamp_of(&other, "说明", "长河街道", ym(2020, 5)),
        ] {
            assert_ne!(changed, stamp);
        }
        assert_eq!(stamp_of(&config, "说明", "长河街道", ym(2020, 5)), stamp);
    }

    #[test]
    fn an_unchanged_form_is_not_written_again_and_a_missing_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config();
        config.base_dir = dir.path().to_path_buf();
        let unit = config.plan.units[0].clone();
        std::fs::create_dir_all(config.unit_dir(&unit)).unwrap();
        let shared = shared_inputs(&config, "说明");
        let first = publish(&config, "说明", &shared, &unit, ym(2020, 5)).unwrap();
        let Published::Written(path) = first else {
            panic!("{first:?}")
        };
        let second = publish(&config, "说明", &shared, &unit, ym(2020, 5)).unwrap();
        assert!(matches!(second, Published::Unchanged(_)), "{second:?}");
        let changed = shared_inputs(&config, "新的说明");
        let third = publish(&config, "新的说明", &changed, &unit, ym(2020, 5)).unwrap();
        assert!(matches!(third, Published::Written(_)), "{third:?}");
        std::fs::remove_file(&path).unwrap();
        let again = publish(&config, "新的说明", &changed, &unit, ym(2020, 5)).unwrap();
        assert!(matches!(again, Published::Written(_)), "{again:?}");
        assert!(path.is_file());
    }

    #[test]
    fn a_rendered_form_is_as_written_and_a_saved_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let config = config();
        let form = dir.path().join("form.xlsx");
        let bytes = render(&config, "说明", Some("长河街道"), Some(ym(2020, 5))).unwrap();
        std::fs::write(&form, bytes).unwrap();
        assert!(as_written(&form));
        // rust_xlsxwriter stamps the time of saving, as a spreadsheet program does.
        let saved = dir.path().join("saved.xlsx");
        rust_xlsxwriter::Workbook::new().save(&saved).unwrap();
        assert!(!as_written(&saved));
        std::fs::write(&saved, b"not a zip").unwrap();
        assert!(!as_written(&saved));
    }
}
