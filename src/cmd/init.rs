//! `tally init DIR`: write the reference plan's tally.toml, its drop folders and each unit's
//! folder for the form (`forms`); it writes no form, having no clock to tell the month.

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
            "{}：已存在；tally init 从不覆盖已有的计划",
            path.display()
        ))
        .into());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}：无法创建文件夹", dir.display()))?;
    std::fs::write(&path, REFERENCE_PLAN)
        .with_context(|| format!("{}：无法写入", path.display()))?;
    let config = Config::load(&path)?;
    for unit in &config.plan.units {
        let folder = if config.forms.enabled {
            crate::forms::folder(&config, unit)
        } else {
            config.unit_dir(unit)
        };
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("{}：无法创建文件夹", folder.display()))?;
    }
    println!(
        "已写入 {}，并在 {} 下建立 {} 个单位报送文件夹",
        path.display(),
        config.watch_root().display(),
        config.plan.units.len()
    );
    Ok(ExitStatus::Success)
}
