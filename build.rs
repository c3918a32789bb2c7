//! Build script: records the git commit the binary is built from as `TALLY_COMMIT`, for
//! `tally --version`. The commit never fails the build: outside a git checkout of this
//! repository (a source tarball, a vendored crate) or without git, it is "unknown".
//! `TALLY_COMMIT` set in the environment at build time wins (a packager's own record).
//! Also lists the characters traditional → simplified conversion may change (`fold`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TALLY_COMMIT");
    let commit = match std::env::var("TALLY_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => git_commit().unwrap_or_else(|| "unknown".to_string()),
    };
    println!("cargo:rustc-env=TALLY_COMMIT={commit}");
    write_traditional();
    // On Linux the `tally` executable is linked at a fixed address (not position-independent):
    // the loader then has no relocations to apply and no pages to copy for them at each start,
    // which `check` of a small return and every reader child pay (~0.3 ms of 1.5 ms). The
    // libraries, heap and stack are still placed at random.
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}

/// The short hash of HEAD, when the package's folder is the top of a git work tree (not a
/// tarball unpacked inside some other repository); rebuilds when HEAD moves.
fn git_commit() -> Option<String> {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let top = git(&manifest_dir, &["rev-parse", "--show-toplevel"])?;
    if !same_dir(Path::new(&top), &manifest_dir) {
        return None;
    }
    // HEAD of this work tree, the branch it names, and packed refs: any of them moves the commit.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&manifest_dir, &["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(p) = git(&manifest_dir, &["rev-parse", "--git-path", &name]) {
            let p = manifest_dir.join(p);
            // A path that does not exist would make cargo rerun this script on every build.
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    git(&manifest_dir, &["rev-parse", "--short=12", "HEAD"])
}

/// `$OUT_DIR/traditional.rs`: `TRADITIONAL`, the sorted characters `fast2s::convert` changes,
/// alone or in the words where it changes one only there (its special cases, fast2s 0.3). A
/// label without any of them converts to itself, so `fold` skips the conversion and the tables
/// fast2s builds at its first use.
fn write_traditional() {
    // fast2s converts only characters of three UTF-8 bytes (U+0800..U+FFFF).
    let mut chars: Vec<char> = ('\u{800}'..='\u{ffff}')
        .filter(|c| {
            let s = c.to_string();
            fast2s::convert(&s) != s
        })
        .collect();
    // The words of fast2s 0.3.1's special cases (src/special.rs; Cargo.lock holds that version).
    for word in [
        "藉口", "憑藉", "看著", "苧麻", "闔家", "鍾書", "校讎", "讎定", "仇讎", "計畫", "企畫",
    ] {
        let simplified = fast2s::convert(word);
        chars.extend(
            word.chars()
                .zip(simplified.chars())
                .filter(|(a, b)| a != b)
                .map(|(a, _)| a),
        );
    }
    chars.sort_unstable();
    chars.dedup();
    let list: String = chars
        .iter()
        .map(|c| format!("'\\u{{{:x}}}',", *c as u32))
        .collect();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("traditional.rs");
    std::fs::write(
        out,
        format!(
            "/// Sorted; see build.rs.\npub static TRADITIONAL: [char; {}] = [{list}];\n",
            chars.len()
        ),
    )
    .expect("write traditional.rs");
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
