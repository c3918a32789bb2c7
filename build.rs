//! Build script: records the git commit the binary is built from as `TALLY_COMMIT`, for
//! `tally --version`. Never fails the build: outside a git checkout of this repository (a
//! source tarball, a vendored crate) or without git, the commit is "unknown".
//! `TALLY_COMMIT` set in the environment at build time wins (a packager's own record).

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
