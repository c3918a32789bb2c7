//! Shared helpers for end-to-end tests: a temp work folder holding a copy of the reference
//! plan, the real `tally` binary run in it, and returns built from the template's layout.

#![allow(dead_code)]

pub mod daemon;

#[allow(unused_imports)]
pub use daemon::{Daemon, PATIENCE, gentle_stop_possible, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_tally");
pub const REFERENCE_PLAN: &str = include_str!("../../tally.toml");

/// The shipped reference plan, parsed.
pub fn reference_plan() -> tally::core::plan::Plan {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    tally::config::Config::load(&dir.join("tally.toml"))
        .unwrap()
        .plan
}

/// A temporary folder with `tally.toml` (the reference plan) and its drop folders.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir::with_plan(REFERENCE_PLAN)
    }

    pub fn with_plan(plan: &str) -> Workdir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("tally.toml"), plan).unwrap();
        for u in ["西兴街道", "长河街道", "浦沿街道", "江北科技园"] {
            std::fs::create_dir_all(dir.path().join("watch-dirs").join(u)).unwrap();
        }
        Workdir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn unit_dir(&self, unit: &str) -> PathBuf {
        self.join("watch-dirs").join(unit)
    }

    /// `tally --config <this>/tally.toml ARGS` in this folder, without the variables a
    /// developer's shell may hold, logging warnings only; not started yet.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.path())
            .arg("--config")
            .arg(self.join("tally.toml"))
            .args(args)
            .env_remove("TALLY_NOW")
            .env_remove("TALLY_SMTP_URL")
            .env("RUST_LOG", "tally=warn");
        cmd
    }

    /// Run tally with `--config <this>/tally.toml` and the given args. Under Wine, starting a
    /// process now and then fails with ERROR_INTERNAL_ERROR (1359) while the machine is loaded,
    /// before tally runs at all: such a start is tried again, up to three times.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut retries = 0;
        loop {
            match self.command(args).output() {
                Ok(out) => return out,
                Err(e) if cfg!(windows) && e.raw_os_error() == Some(1359) && retries < 3 => {
                    retries += 1;
                    eprintln!("RETRIED the start of tally {args:?} (Wine): {e}");
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
                Err(e) => panic!("run tally {args:?}: {e:?}"),
            }
        }
    }

    /// Run and return stdout, asserting the exit code.
    pub fn stdout(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "tally {args:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str], code: i32) -> serde_json::Value {
        let s = self.stdout(args, code);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
    }

    /// Files directly in a folder, sorted by name.
    pub fn files_in(&self, dir: impl AsRef<Path>) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.join(dir))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_file())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// A valid 18-character resident ID from a seed (Hangzhou Binjiang region, born 1980-1999).
pub fn valid_id(seed: u32) -> String {
    let year = 1980 + (seed % 20);
    let month = 1 + (seed / 20) % 12;
    let day = 1 + (seed / 240) % 28;
    let seq = seed % 1000;
    let first17 = format!("330108{year:04}{month:02}{day:02}{seq:03}");
    let check = tally::core::ids::resident_id_check_char(&first17).unwrap();
    format!("{first17}{check}")
}

/// A valid 统一社会信用代码 from a seed.
pub fn valid_credit_code(seed: u32) -> String {
    let first17 = format!("91330108MA{:07}", seed % 10_000_000);
    let check = tally::core::ids::credit_code_check_char(&first17).unwrap();
    format!("{first17}{check}")
}

/// One roster row.
#[derive(Clone, Debug)]
pub struct Person {
    pub name: String,
    pub id: String,
    pub category: String,
    pub date: String,
    pub hours: f64,
    pub result: String,
}

impl Person {
    pub fn new(seed: u32, category: &str, date: &str) -> Person {
        Person {
            name: format!("员工{seed}"),
            id: valid_id(seed),
            category: category.into(),
            date: date.into(),
            hours: 8.0,
            result: "合格".into(),
        }
    }
    pub fn failed(mut self) -> Person {
        self.result = "不合格".into();
        self
    }
}

/// Build a return in the template's layout (rust_xlsxwriter; IDs as text, dates as dates).
pub fn return_xlsx(unit: &str, month: &str, people: &[Person]) -> Vec<u8> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut wb = Workbook::new();
    let date_fmt = Format::new().set_num_format("yyyy-mm-dd");
    let cover = wb.add_worksheet();
    cover.set_name("填报信息").unwrap();
    cover.write_string(0, 0, "培训情况月报").unwrap();
    for (i, (label, value)) in [
        ("填报单位", unit),
        ("报送月份", month),
        ("填报人", "王芳"),
        ("联系电话", "0571-87654321"),
    ]
    .iter()
    .enumerate()
    {
        cover.write_string(i as u32 + 1, 0, *label).unwrap();
        cover.write_string(i as u32 + 1, 1, *value).unwrap();
    }
    let roster = wb.add_worksheet();
    roster.set_name("培训台账").unwrap();
    let headers = tally::core::form::Column::ALL.map(|c| c.header());
    for (c, h) in headers.iter().enumerate() {
        roster.write_string(0, c as u16, *h).unwrap();
    }
    for (i, p) in people.iter().enumerate() {
        let r = i as u32 + 1;
        roster.write_number(r, 0, (i + 1) as f64).unwrap();
        roster.write_string(r, 1, &p.name).unwrap();
        roster.write_string(r, 2, &p.id).unwrap();
        roster
            .write_string(r, 3, "杭州滨江示例科技有限公司")
            .unwrap();
        roster.write_string(r, 4, valid_credit_code(7)).unwrap();
        roster.write_string(r, 5, &p.category).unwrap();
        match ExcelDateTime::parse_from_str(&p.date) {
            Ok(d) => {
                roster
                    .write_datetime_with_format(r, 6, &d, &date_fmt)
                    .unwrap();
            }
            Err(_) => {
                roster.write_string(r, 6, &p.date).unwrap();
            }
        }
        roster.write_number(r, 7, p.hours).unwrap();
        roster.write_string(r, 8, &p.result).unwrap();
        roster
            .write_string(r, 9, format!("ZS{:06}", i + 1))
            .unwrap();
    }
    wb.save_to_buffer().unwrap()
}

/// Write a return into a unit's drop folder (or anywhere) and return its path.
pub fn drop_return(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Convert `input` with LibreOffice (`soffice --headless --convert-to TO`) into `outdir`, in a
/// profile of its own so that runs never share a lock; `prepare` may put settings into the
/// profile's `user` folder first. Returns the converted file.
pub fn soffice_convert(
    input: &Path,
    to: &str,
    outdir: &Path,
    prepare: impl FnOnce(&Path),
) -> PathBuf {
    let profile = tempfile::tempdir().unwrap();
    let user = profile.path().join("user");
    std::fs::create_dir_all(&user).unwrap();
    prepare(&user);
    let out = Command::new("soffice")
        .arg(format!(
            "-env:UserInstallation=file://{}",
            profile.path().display()
        ))
        .args(["--headless", "--convert-to", to, "--outdir"])
        .arg(outdir)
        .arg(input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "soffice: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ext = to.split(':').next().unwrap_or(to);
    outdir.join(input.with_extension(ext).file_name().unwrap())
}

/// A work folder whose plan takes a dropped file as soon as it has settled (`min_age_secs = 0`),
/// for `watch --once` tests.
/// The reference plan with a fast [watch] section for daemon tests: no minimum age, and a
/// rescan so rare that only the mode under test can find a file.
pub fn fast_plan() -> String {
    let plan = REFERENCE_PLAN
        .replacen("\nmin_age_secs = 1\n", "\nmin_age_secs = 0\n", 1)
        .replacen("\nrescan_secs = 60\n", "\nrescan_secs = 3600\n", 1);
    assert!(plan.contains("min_age_secs = 0") && plan.contains("rescan_secs = 3600"));
    plan
}

pub fn workdir_taking_at_once() -> Workdir {
    let plan = REFERENCE_PLAN.replacen("\nmin_age_secs = 1\n", "\nmin_age_secs = 0\n", 1);
    assert_ne!(plan, REFERENCE_PLAN);
    Workdir::with_plan(&plan)
}

/// `tally --now NOW watch --once --settle 0.3` in `w`: its stdout, after asserting exit 0.
pub fn watch_once(w: &Workdir, now: &str) -> String {
    w.stdout(&["--now", now, "watch", "--once", "--settle", "0.3"], 0)
}

/// Whether this test runs as a Windows program under Wine (ntdll exports `wine_get_version`).
pub fn under_wine() -> bool {
    #[cfg(windows)]
    {
        use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
        let ntdll: Vec<u16> = "ntdll.dll\0".encode_utf16().collect();
        // SAFETY: plain lookups with NUL-terminated names; ntdll is always loaded.
        unsafe {
            let module = GetModuleHandleW(ntdll.as_ptr());
            !module.is_null()
                && GetProcAddress(module, c"wine_get_version".as_ptr().cast()).is_some()
        }
    }
    #[cfg(not(windows))]
    false
}

/// A program the tests need is missing: fail under CI (`CI` set) on a real system, skip with a
/// notice otherwise. Under Wine a Linux program (LibreOffice, Python) cannot be started by a
/// Windows test at all: that is an explicit skip, CI or not, whose reason is printed.
/// Returns whether the test may go on.
pub fn require(test: &str, what: &str, found: bool) -> bool {
    if found {
        return true;
    }
    if under_wine() {
        skipped(&format!(
            "{test} (Wine): needs {what}, a Linux program that a Windows test under Wine cannot start"
        ));
        return false;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {what} is required under CI");
    }
    eprintln!("NOTICE: {what} not found; skipping {test}");
    false
}

/// Say that a test skipped and why: on stdout, and as a line of the file named by
/// `TALLY_TEST_SKIPS` when set (the Windows run in .ci/run lists them at its end).
pub fn skipped(why: &str) {
    skip_line(&format!("SKIPPED {why}"));
}

/// Say that a test ran on less than it does elsewhere, and why (listed like [`skipped`]).
pub fn reduced(why: &str) {
    skip_line(&format!("REDUCED {why}"));
}

fn skip_line(line: &str) {
    println!("{line}");
    if let Some(file) = std::env::var_os("TALLY_TEST_SKIPS") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}
