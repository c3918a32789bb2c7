//! `tally init DIR`: write the reference plan's tally.toml, its drop folders and each unit's
//! folder for the form (`forms`); it writes no form, having no clock to tell the month.
//! A tally.toml already in DIR (the release archive's, or one the bureau edited) is never
//! overwritten: init makes the folders that plan names and leaves the file as it is.

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
    let existed = match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() => true,
        Ok(_) => {
            return Err(UsageError(format!("{}：已存在，但不是文件", path.display())).into());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("{}：无法读取", path.display())),
    };
    if !existed {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}：无法创建文件夹", dir.display()))?;
        std::fs::write(&path, REFERENCE_PLAN)
            .with_context(|| format!("{}：无法写入", path.display()))?;
    }
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
    let plan = if existed {
        "已有计划文件，保留不变"
    } else {
        "已写入"
    };
    println!(
        "{plan} {}，并在 {} 下建立 {} 个单位报送文件夹",
        path.display(),
        config.watch_root().display(),
        config.plan.units.len()
    );
    Ok(ExitStatus::Success)
}
