//! The shape of the code (DESIGN.md §7), checked on the source text so that it stays: the pure
//! core imports no edge and touches no disk, clock, network or process; nothing below `cmd`
//! imports `cmd`. A file that breaks a rule is named with the line and what it reached for.

use std::path::{Path, PathBuf};

/// What the core may not name: the edges of this crate, and the crates and std modules that
/// touch files, clocks, processes, the network, SQLite, workbooks, mail or file events.
const CORE_FORBIDDEN: &[&str] = &[
    "crate::cmd",
    "crate::config",
    "crate::durable",
    "crate::excel",
    "crate::feedback",
    "crate::intake",
    "crate::ledger",
    "crate::logging",
    "crate::mail",
    "crate::master",
    "crate::read",
    "crate::settings",
    "crate::targets",
    "crate::template",
    "crate::watch",
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "std::time::SystemTime",
    "std::time::Instant",
    "SystemTime::now",
    "Instant::now",
    "Utc::now",
    "Local::now",
    "rusqlite",
    "postgres",
    "calamine",
    "rust_xlsxwriter",
    "lettre",
    "notify",
    "zip::",
    "tempfile",
    "tracing",
];

/// What no module below `cmd` may name.
const BELOW_CMD_FORBIDDEN: &[&str] = &["crate::cmd"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its unit tests (`#[cfg(test)]` and everything after it, where the
/// test module sits at the end of the file, as it does throughout this crate) and without
/// comments.
fn code_of(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let code = line.split("//").next().unwrap_or(line);
        out.push((i + 1, code));
    }
    out
}

/// Every (line, forbidden name) in `text`.
fn violations<'a>(text: &str, forbidden: &[&'a str]) -> Vec<(usize, &'a str)> {
    let mut out = Vec::new();
    for (line, code) in code_of(text) {
        for name in forbidden {
            let mut rest = code;
            while let Some(at) = rest.find(name) {
                // A whole path segment: `crate::mail` must not match `crate::mailbox`.
                let before_ok = at == 0
                    || !rest[..at]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_');
                let after = &rest[at + name.len()..];
                let after_ok = name.ends_with("::")
                    || !after
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_');
                if before_ok && after_ok {
                    out.push((line, *name));
                    break;
                }
                rest = &rest[at + name.len()..];
            }
        }
    }
    out
}

fn report(files: &[PathBuf], forbidden: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path).unwrap();
        for (line, name) in violations(&text, forbidden) {
            let rel = path.strip_prefix(src().parent().unwrap()).unwrap_or(path);
            out.push(format!("{}:{line}: reaches for `{name}`", rel.display()));
        }
    }
    out
}

#[test]
fn the_core_imports_no_edge_and_touches_nothing_outside() {
    let mut files = Vec::new();
    rust_files(&src().join("core"), &mut files);
    assert!(files.len() >= 10, "the core is src/core/: {files:?}");
    let found = report(&files, CORE_FORBIDDEN);
    assert!(
        found.is_empty(),
        "the core must stay pure (DESIGN.md §7):\n{}",
        found.join("\n")
    );
}

/// What only the ledger may name: the database clients (DESIGN.md §7, "the only place that
/// speaks SQL").
const OUTSIDE_LEDGER_FORBIDDEN: &[&str] = &["rusqlite", "postgres::"];

#[test]
fn only_the_ledger_speaks_to_a_database() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.retain(|p| !p.starts_with(src().join("ledger")));
    let found = report(&files, OUTSIDE_LEDGER_FORBIDDEN);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn nothing_below_cmd_imports_cmd() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.retain(|p| !p.starts_with(src().join("cmd")) && !p.ends_with("main.rs"));
    let found = report(&files, BELOW_CMD_FORBIDDEN);
    assert!(
        found.is_empty(),
        "dependencies point one way, cmd → edges → core:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checker_sees_an_edge_import_and_ignores_tests_and_comments() {
    let text = "//! docs name crate::ledger\n\
                use crate::core::fold;\n\
                use crate::ledger::Ledger;\n\
                fn f() { let _ = std::fs::read(\"x\"); } // not crate::mail\n\
                use crate::mailbox;\n\
                #[cfg(test)]\n\
                mod tests { use crate::config::Config; }\n";
    assert_eq!(
        violations(text, CORE_FORBIDDEN),
        [(3, "crate::ledger"), (4, "std::fs")]
    );
}
