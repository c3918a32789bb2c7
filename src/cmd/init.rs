//! `tally init DIR`: write the reference plan's tally.toml and its drop folders.

use crate::config::Config;
use crate::settings::{ExitStatus, UsageError};
use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Target folder (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// The reference plan, as shipped at the repository's root.
pub const REFERENCE_PLAN: &str = include_str!("../../tally.toml");

pub fn run(args: &InitArgs) -> anyhow::Result<ExitStatus> {
    let dir = &args.dir;
    let path = dir.join("tally.toml");
    if path.exists() {
        return Err(UsageError(format!(
            "{}: already exists; tally init never overwrites a plan",
            path.display()
        ))
        .into());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    std::fs::write(&path, REFERENCE_PLAN)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    let config = Config::load(&path)?;
    for unit in &config.plan.units {
        let folder = config.unit_dir(unit);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("{}: cannot create", folder.display()))?;
    }
    println!(
        "wrote {} and {} drop folders under {}",
        path.display(),
        config.plan.units.len(),
        config.watch_root().display()
    );
    Ok(ExitStatus::Success)
}
